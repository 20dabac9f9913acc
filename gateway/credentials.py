"""Credentials for the gateway's authentication, parsed once when the settings are read.

A comma list, or ``@path`` to a file with one entry a line (``#`` starts a comment). A mode that
is on with no usable credential fails at start, not at the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

#: What a key may do: call the runtime API only, or also the control plane (which runs code).
INVOKE = "invoke"
ADMIN = "admin"
ROLES = (INVOKE, ADMIN)


@dataclass(frozen=True)
class Credentials:
    #: API key -> its role.
    api_keys: Mapping[str, str] = field(default_factory=dict)
    #: SigV4 access key -> secret key.
    sigv4: Mapping[str, str] = field(default_factory=dict)
    #: SigV4 access key -> its role.
    sigv4_roles: Mapping[str, str] = field(default_factory=dict)


def parse_credentials(
    auth: str, api_keys: SecretStr | None, sigv4_credentials: SecretStr | None
) -> Credentials:
    """The credentials ``auth`` needs; raises ``ValueError`` naming the setting that is wrong.

    An entry may end in ``:admin`` (or ``:invoke``, the default): ``KEY:admin`` for an API key,
    ``ACCESS:SECRET:admin`` for a SigV4 pair.
    """
    if auth == "api-key":
        keys = {}
        for entry in parse_list(api_keys, "api_keys"):
            key, role = _role(entry, "api_keys", parts=1)
            keys[key[0]] = role
        return Credentials(api_keys=keys)
    if auth == "sigv4":
        secrets, roles = sigv4_secrets(sigv4_credentials)
        return Credentials(sigv4=secrets, sigv4_roles=roles)
    return Credentials()


def sigv4_secrets(value: SecretStr | None) -> tuple[dict[str, str], dict[str, str]]:
    secrets: dict[str, str] = {}
    roles: dict[str, str] = {}
    for entry in parse_list(value, "sigv4_credentials"):
        (access, secret), role = _role(entry, "sigv4_credentials", parts=2)
        secrets[access] = secret
        roles[access] = role
    return secrets, roles


def _role(entry: str, name: str, *, parts: int) -> tuple[list[str], str]:
    """``entry`` split into its ``parts`` fields and its role (``invoke`` unless named)."""
    fields = entry.split(":")
    role = INVOKE
    if len(fields) == parts + 1:
        role = fields.pop()
        if role not in ROLES:
            raise ValueError(f"{name}: unknown role {role!r}; roles are {', '.join(ROLES)}")
    form = "key" if parts == 1 else "access_key:secret_key"
    if len(fields) != parts or not all(fields):
        raise ValueError(f"{name}: each entry must be {form}, optionally followed by :admin")
    return fields, role


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
