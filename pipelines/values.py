"""The spec's rules on one value alone: sizes, TargetModel paths and environment entries.

They need no model around them, so they live apart from the pydantic classes of
``pipelines.spec``, which applies them to its fields and re-exports the public ones; the gateway
checks each request's TargetModel with the same rule, with no spec in hand.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TARGET_MODEL = 1024
MAX_ENV_ENTRIES = 100
MAX_ENV_LEN = 1024
ENV_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ENV_KEY = re.compile(ENV_KEY_PATTERN)


def parse_size(value: Any) -> int:
    """Bytes from an int (MiB, like ``TANDEM_MEMORY_LIMIT_MB``) or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 512 (MiB), '2GiB' or '500MB'")
    if isinstance(value, int | float):
        size = int(value * 2**20)
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        number, unit = match.groups()
        factor = _UNITS[(unit or "").lower()] if unit else 2**20
        size = int(float(number) * factor)
    else:
        raise ValueError(f"{str(value)[:40]!r} is not a size such as 512 (MiB), '2GiB' or '500MB'")
    if size <= 0:
        raise ValueError("must be a positive size")
    return size


def check_target_model(target: str) -> str:
    """A TargetModel is a relative path under the prefix that cannot escape it; else ValueError."""
    if not isinstance(target, str) or not 1 <= len(target) <= MAX_TARGET_MODEL:
        raise ValueError(f"must be 1 to {MAX_TARGET_MODEL} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        raise ValueError("must not contain NUL or other control characters")
    if _ESCAPE.search(target):
        raise ValueError("must not contain URL-encoded sequences (%XX)")
    if "\\" in target:
        raise ValueError("must use '/' between folders, not '\\'")
    if target.startswith("/") or "://" in target or re.match(r"^[A-Za-z]:", target):
        raise ValueError("must be a path relative to the model_data prefix")
    parts = target.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("must not contain '.', '..' or empty path segments")
    return target


def check_environment(env: dict[str, str]) -> dict[str, str]:
    """SageMaker's limits on a container's Environment: entries, key pattern, lengths."""
    if len(env) > MAX_ENV_ENTRIES:
        raise ValueError(f"at most {MAX_ENV_ENTRIES} entries (got {len(env)})")
    for key, value in env.items():
        if not _ENV_KEY.match(key) or len(key) > MAX_ENV_LEN:
            raise ValueError(f"key {key!r} must match {ENV_KEY_PATTERN} and be <= {MAX_ENV_LEN}")
        if len(value) > MAX_ENV_LEN:
            raise ValueError(f"value of {key!r} must be <= {MAX_ENV_LEN} characters")
        if "\x00" in value:
            raise ValueError(f"value of {key!r} must not contain the NUL character")
    return env


def env_str(value: Any) -> Any:
    """A YAML scalar as an environment variable's string (``8080``, ``true``); else as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
