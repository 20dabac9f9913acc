"""CloudWatch's three wire forms, driven by botocore's ``cloudwatch`` service model.

The model lists ``smithy-rpc-v2-cbor``, ``json`` (JSON 1.0) and ``query`` (form-encoded
``Action=...``, XML answers: the AWS CLI v1 and older SDKs); botocore resolves the protocol by
its own priority, so today's boto3 sends JSON 1.0, and SDKs that follow the model's order CBOR.
Each request becomes the operation's input as a dict with every member of its modelled type
(a timestamp as an aware ``datetime``, whichever of epoch seconds, CBOR tag 1 or ISO 8601 it
came as); a member of the wrong type is ``SerializationException`` naming it, never a 500.
Answers are written back from the output shape: CBOR and JSON as they are (timestamps as epoch
seconds, or tag 1), query as XML in CloudWatch's namespace, lists as ``<member>``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from gateway.cloudwatch.errors import CloudWatchError, SerializationError

_INDEX = re.compile(r"\.(member|entry)\.(\d+)")


@cache
def model() -> ServiceModel:
    """botocore's ``cloudwatch`` model, loaded once."""
    return botocore.session.get_session().get_service_model("cloudwatch")


def operation(name: str) -> OperationModel | None:
    try:
        return model().operation_model(name)
    except Exception:  # botocore's OperationNotFoundError
        return None


# ---- requests -----------------------------------------------------------------------------------


def typed(shape: Shape | None, value: Any, path: str) -> Any:
    """``value`` (from JSON or CBOR) checked against ``shape``; timestamps made datetimes."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            raise _wrong(path, "an object")
        members = shape.members
        return {k: typed(members[k], v, _join(path, k)) for k, v in value.items() if k in members}
    if kind == "list":
        if not isinstance(value, list):
            raise _wrong(path, "a list")
        return [typed(shape.member, v, f"{path}.member.{i}") for i, v in enumerate(value, 1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _wrong(path, "a map")
        return {str(k): typed(shape.value, v, _join(path, str(k))) for k, v in value.items()}
    return _scalar(kind, value, path)


def from_query(shape: Shape | None, form: Mapping[str, str]) -> dict[str, Any]:
    """The query protocol's flattened ``A.member.1.B=...`` form as the operation's input."""
    if shape is None:
        return {}
    indices: dict[str, set[int]] = defaultdict(set)
    for key in form:
        for match in _INDEX.finditer(key):
            indices[key[: match.start()] + "." + match.group(1)].add(int(match.group(2)))
    value = _from_form(shape, form, "", indices)
    return value if isinstance(value, dict) else {}


def _from_form(shape: Shape, form: Mapping[str, str], key: str, idx: dict[str, set[int]]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        out = {}
        for name, member in shape.members.items():
            value = _from_form(member, form, _join(key, name), idx)
            if value is not None:
                out[name] = value
        return out or None
    if kind == "list":
        found = sorted(idx.get(f"{key}.member", ()))
        if not found:
            return [] if form.get(key) == "" else None
        return [_from_form(shape.member, form, f"{key}.member.{i}", idx) for i in found]
    if kind == "map":
        entries = sorted(idx.get(f"{key}.entry", ()))
        return {
            form.get(f"{key}.entry.{i}.key", ""): _from_form(
                shape.value, form, f"{key}.entry.{i}.value", idx
            )
            for i in entries
        } or None
    raw = form.get(key)
    return None if raw is None else _scalar(kind, raw, key)


def _scalar(kind: str, value: Any, path: str) -> Any:
    if kind == "string":
        if not isinstance(value, str):
            raise _wrong(path, "a string")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, str):
            value = _number(value, int, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, "an integer")
        return value
    if kind in ("double", "float"):
        if isinstance(value, str):
            value = _number(value, float, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(path, "a number")
        return float(value)
    if kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise _wrong(path, "a boolean")
        return value
    if kind == "timestamp":
        return _timestamp(value, path)
    return value


def _number(text: str, kind: type[int] | type[float], path: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise _wrong(path, "a number") from None


def _timestamp(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(value)
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            if re.fullmatch(r"\d+(\.\d+)?", value):
                return datetime.fromtimestamp(float(value), UTC)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise _wrong(path, "a timestamp")


def _wrong(path: str, what: str) -> SerializationError:
    return SerializationError(f"The parameter {path or 'the request'} must be {what}.")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---- answers ------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """An answer for JSON: datetimes as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def query_answer(op: OperationModel, result: Mapping[str, Any], request_id: str) -> str:
    """An answer in the query protocol's XML."""
    name = op.name
    inner = ""
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        inner = _xml(shape, result, wrapper)
    return (
        f'<{name}Response xmlns="{model().metadata["xmlNamespace"]}">{inner}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{name}Response>"
    )


def query_error(exc: CloudWatchError, request_id: str) -> str:
    return (
        f'<ErrorResponse xmlns="{model().metadata["xmlNamespace"]}"><Error>'
        f"<Type>{exc.fault}</Type><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )


def _xml(shape: Shape, value: Any, tag: str) -> str:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        body = "".join(
            _xml(member, value[name], name)
            for name, member in shape.members.items()
            if value.get(name) is not None
        )
    elif kind == "list":
        body = "".join(_xml(shape.member, v, "member") for v in value)
    elif kind == "map":
        body = "".join(
            f"<entry><key>{escape(str(k))}</key>{_xml(shape.value, v, 'value')}</entry>"
            for k, v in value.items()
        )
    elif kind == "timestamp":
        body = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    elif kind == "boolean":
        body = "true" if value else "false"
    else:
        body = escape(repr(value) if isinstance(value, float) else str(value))
    return f"<{tag}>{body}</{tag}>"
