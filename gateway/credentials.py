"""Credentials for the gateway's authentication, parsed once when the settings are read.

A comma list, or ``@path`` to a file with one entry a line (``#`` starts a comment). A mode that
is on with no usable credential fails at start, not at the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr


@dataclass(frozen=True)
class Credentials:
    api_keys: tuple[str, ...] = ()
    #: SigV4 access key -> secret key.
    sigv4: Mapping[str, str] = field(default_factory=dict)


def parse_credentials(
    auth: str, api_keys: SecretStr | None, sigv4_credentials: SecretStr | None
) -> Credentials:
    """The credentials ``auth`` needs; raises ``ValueError`` naming the setting that is wrong."""
    if auth == "api-key":
        return Credentials(api_keys=tuple(parse_list(api_keys, "api_keys")))
    if auth == "sigv4":
        return Credentials(sigv4=sigv4_secrets(sigv4_credentials))
    return Credentials()


def sigv4_secrets(value: SecretStr | None) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for pair in parse_list(value, "sigv4_credentials"):
        access, sep, secret = pair.partition(":")
        if not sep or not access or not secret:
            raise ValueError("sigv4_credentials: each entry must be access_key:secret_key")
        secrets[access] = secret
    return secrets


def parse_list(value: SecretStr | None, name: str) -> list[str]:
    """A comma list, or ``@path`` to a file with one entry a line (``#`` starts a comment)."""
    text = value.get_secret_value().strip() if value is not None else ""
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"{name}: cannot read {path}: {exc.strerror}") from exc
        items = [line.split("#", 1)[0].strip() for line in lines]
    else:
        items = [item.strip() for item in text.split(",")]
    items = [item for item in items if item]
    if not items:
        raise ValueError(
            f"{name} is empty: authentication is on but no credential is configured "
            f"(set TANDEM_{name.upper()})"
        )
    return items
