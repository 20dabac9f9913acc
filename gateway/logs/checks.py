"""CloudWatch Logs' input checks and paging tokens, from botocore's own model of the service.

The model (botocore's ``logs`` JSON) says each member's type, length, range, pattern and enum;
a member of the wrong type is a ``SerializationException``, a value out of bounds an
``InvalidParameterException`` naming it (the codes the service declares). Paging tokens are ours:
one made by another call, another query, or anyone else is refused the same way.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import zlib
from typing import Any

from gateway.errors import ControlError, SerializationFailure

#: X-Amz-Target prefix of every CloudWatch Logs operation (the model's ``targetPrefix``).
TARGET_PREFIX = "Logs_20140328"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "list": (list,),
}


class LogsError(ControlError):
    """An error in CloudWatch Logs' JSON shape (``__type`` and ``message``, HTTP 400)."""


class InvalidParameter(LogsError):
    code = "InvalidParameterException"


class ResourceNotFound(LogsError):
    code = "ResourceNotFoundException"


@functools.cache
def service_model() -> Any:
    """CloudWatch Logs' botocore model, loaded on the first call."""
    import botocore.session

    return botocore.session.get_session().get_service_model("logs")


def validate(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The known members of ``params``, each checked against ``operation``'s input shape."""
    shape = service_model().operation_model(operation).input_shape
    problems: list[str] = []
    cleaned: dict[str, Any] = {}
    for name in shape.required_members:
        if params.get(name) is None:
            problems.append(
                f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
            )
    for name, value in params.items():
        member = shape.members.get(name)
        if member is None or value is None:
            continue  # unknown members are dropped, as AWS does
        wanted = _TYPES.get(member.type_name, (object,))
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            raise SerializationFailure(f"'{name}' must be a {member.type_name}")
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and any(not isinstance(v, str) for v in value):
            raise SerializationFailure(f"'{name}' must be a list of strings")
        problems += _bounds(name, value, member.metadata)
        if isinstance(value, list):
            problems += [p for v in items for p in _bounds(name, v, member.member.metadata)]
        cleaned[name] = value
    if problems:
        n = len(problems)
        raise InvalidParameter(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems)
        )
    return cleaned


def _bounds(name: str, value: Any, rules: dict[str, Any]) -> list[str]:
    shown = f"'{value}'" if isinstance(value, str | int) else "the value"
    fail = f"Value {shown[:200]} at '{name}' failed to satisfy constraint: Member must"
    size = len(value) if isinstance(value, str | list) else value
    problems = []
    if "min" in rules and size < rules["min"]:
        what = "have length" if isinstance(value, str | list) else "have value"
        problems.append(f"{fail} {what} greater than or equal to {rules['min']}")
    if "max" in rules and size > rules["max"]:
        what = "have length" if isinstance(value, str | list) else "have value"
        problems.append(f"{fail} {what} less than or equal to {rules['max']}")
    if isinstance(value, str) and "pattern" in rules and not _matches(rules["pattern"], value):
        problems.append(f"{fail} satisfy regular expression pattern: {rules['pattern']}")
    if isinstance(value, str) and "enum" in rules and value not in rules["enum"]:
        problems.append(f"{fail} satisfy enum value set: [{', '.join(rules['enum'])}]")
    return problems


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(pattern: str, value: str) -> bool:
    return _compiled(pattern).fullmatch(value) is not None


def make_token(kind: str, query: Any, offset: int) -> str:
    """An opaque token: where the next page of ``kind`` for this ``query`` starts."""
    raw = json.dumps({"k": kind, "q": query, "o": offset}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_token(token: str | None, kind: str, query: Any) -> int:
    """The offset a token of ours for the same call and query holds; 0 without one."""
    if token is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ours = isinstance(data, dict) and data.get("k") == kind
        ours = ours and json.loads(json.dumps(query)) == data.get("q")
        offset = data.get("o") if ours else None
    except (ValueError, TypeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidParameter(
            f"The specified nextToken is invalid: it was not made by {kind} for this query."
        )
    return offset


#: GetLogEvents' own tokens, shaped as CloudWatch Logs' (``f/`` forward, ``b/`` back, digits):
#: a checksum of the group and stream, then the position.
EVENT_TOKEN = re.compile(r"([fb])/(\d{10})(\d{1,18})")


def event_token(direction: str, query: Any, position: int) -> str:
    return f"{direction}/{_checksum(query):010d}{position}"


def read_event_token(token: str, query: Any) -> tuple[str, int]:
    """The direction and position of a token GetLogEvents made for this stream."""
    found = EVENT_TOKEN.fullmatch(token)
    if found is None or int(found.group(2)) != _checksum(query):
        raise InvalidParameter(
            f"The specified nextToken is invalid: {token[:60]!r} was not made by GetLogEvents "
            "for this log stream."
        )
    return found.group(1), int(found.group(3))


def _checksum(query: Any) -> int:
    return zlib.crc32(json.dumps(query, sort_keys=True).encode())
