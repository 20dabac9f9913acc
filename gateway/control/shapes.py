"""Input validation from botocore's own model of SageMaker, with SageMaker's messages.

The service model (``botocore``'s ``sagemaker`` JSON) is the reference for every member: which
are required, their types, lengths, patterns, ranges and enums. It is loaded on the first
control-plane call (a few hundred milliseconds), never at import, so the gateway starts as fast
with the control plane as without it.

Messages follow SageMaker's (AWS's Coral) form, e.g. ``1 validation error detected: Value 'x y' at
'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern:
^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?``; the path is lowerCamel, list items are
``containers.2.member``. A member of the wrong type (a number for a string ...), or a number its
type cannot hold (an ``integer`` past 32 bits, a ``float`` past Java's float range; non-finite
numbers never get past ``wire``), is a ``SerializationException``, as AWS answers for what it
cannot deserialize; then every ``min``/``max`` of the model is checked, so every number an
operation takes is finite and within SageMaker's bounds, here, for every operation. Unknown
members are dropped, as AWS does, so that newer SDKs keep working.

Patterns are matched whole (SageMaker's are anchored although botocore's copies lost the ``^``),
except the ``s3``/``https``-only URL patterns: Tandem also takes ``file://`` and local paths there
(``translate.check_model_data`` confines them to the allowed roots).
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from datetime import datetime
from typing import Any

from gateway.errors import SerializationFailure, ValidationException

#: String shapes whose pattern admits only https:// and s3:// URLs.
#: Shapes whose pattern is not checked: Tandem takes folders and file:// where SageMaker says
#: s3://, and http(s):// webhooks where it says SNS topic (each is checked where it is used).
RELAXED_PATTERNS = frozenset({"Url", "S3ModelUri", "S3Uri", "DestinationS3Uri", "SnsTopicArn"})
#: Enum lists longer than this are cut short in messages (instance types run to hundreds).
MAX_ENUM_SHOWN = 12
#: The range of each integer type (Java's int and long, as AWS reads them) ...
INTEGER_BITS = {"integer": 32, "long": 64}
#: ... and the largest magnitude of each floating type (Java's float and double).
FLOAT_MAX = {"float": 3.4028234663852886e38, "double": sys.float_info.max}
_JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s"}


@functools.cache
def service_model() -> Any:
    """SageMaker's botocore service model, loaded once, on first use."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


def validate(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against ``operation``'s input shape; the known members, timestamps as
    epoch seconds. Raises ``SerializationFailure`` or ``ValidationException`` naming every
    problem."""
    shape = service_model().operation_model(operation).input_shape
    walker = _Walker()
    cleaned = walker.structure(shape, params, "") if shape is not None else {}
    if walker.type_errors:
        raise SerializationFailure("; ".join(walker.type_errors))
    if walker.errors:
        n = len(walker.errors)
        raise ValidationException(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(walker.errors)
        )
    return cleaned


def member_path(*names: str | int) -> str:
    """A SageMaker member path: ``("Containers", 1, "Image")`` -> ``containers.2.member.image``."""
    parts: list[str] = []
    for name in names:
        parts.append(f"{name + 1}.member" if isinstance(name, int) else _camel(name))
    return ".".join(parts)


def show(value: Any, limit: int = 200) -> str:
    """A value as SageMaker quotes it in a message (strings in quotes, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value[:limit]}{'...' if len(value) > limit else ''}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value, default=str)
    return text[:limit] + ("..." if len(text) > limit else "")


class _Walker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.type_errors: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        self.errors.append(
            f"Value {show(value)} at '{path}' failed to satisfy constraint: {constraint}"
        )

    def wrong_type(self, value: Any, path: str, expected: str) -> None:
        got = _json_type(value)
        self.type_errors.append(f"Value {show(value)} at '{path}' must be {expected}, not {got}.")

    def out_of_range(self, value: Any, path: str, expected: str) -> None:
        self.type_errors.append(f"Value {show(value)} at '{path}' is out of range for {expected}.")

    def value(self, shape: Any, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                return self.wrong_type(value, path, "an object")
            return self.structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                return self.wrong_type(value, path, "a list")
            self.length(shape, value, path)
            return [
                self.value(shape.member, item, f"{path}.{i}.member")
                for i, item in enumerate(value, start=1)
            ]
        if kind == "map":
            if not isinstance(value, dict):
                return self.wrong_type(value, path, "an object")
            return self.mapping(shape, value, path)
        return self.scalar(shape, value, path)

    def structure(self, shape: Any, value: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            here = f"{path}.{_camel(name)}" if path else _camel(name)
            item = value.get(name)
            if item is None:
                if name in shape.required_members:
                    self.fail(None, here, "Member must not be null")
                continue
            out[name] = self.value(member, item, here)
        return out

    def mapping(self, shape: Any, value: dict[str, Any], path: str) -> dict[str, Any]:
        self.length(shape, value, path)
        out: dict[str, Any] = {}
        for key, item in value.items():
            keys = _Walker()
            keys.scalar(shape.key, key, path)
            if keys.errors or keys.type_errors:
                rules = [e.split("failed to satisfy constraint: ", 1)[-1] for e in keys.errors]
                self.fail(key, path, f"Map keys must satisfy constraint: [{', '.join(rules)}]")
                self.type_errors.extend(keys.type_errors)
            out[key] = self.value(shape.value, item, f"{path}.{key}")
        return out

    def scalar(self, shape: Any, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind in ("string", "blob"):
            if not isinstance(value, str):
                return self.wrong_type(value, path, "a string")
            self.length(shape, value, path)
            if "\x00" in value:
                self.fail(value, path, "Member must not contain the NUL character")
            enum = shape.metadata.get("enum")
            if enum and value not in enum:
                shown = enum[:MAX_ENUM_SHOWN] + (["..."] if len(enum) > MAX_ENUM_SHOWN else [])
                self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shown)}]")
            pattern = shape.metadata.get("pattern")
            if pattern and shape.name not in RELAXED_PATTERNS:
                compiled = _compile(pattern)
                if compiled is not None and not compiled.fullmatch(value):
                    shown_pattern = pattern if pattern.startswith("^") else "^" + pattern
                    self.fail(
                        value,
                        path,
                        f"Member must satisfy regular expression pattern: {shown_pattern}",
                    )
            return value
        if kind in ("integer", "long"):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                return self.wrong_type(value, path, "an integer")
            bits = INTEGER_BITS[kind]
            low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            if not low <= value <= high:
                return self.out_of_range(value, path, f"a {bits}-bit integer ({low} to {high})")
            self.range(shape, value, path)
            return value
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self.wrong_type(value, path, "a number")
            if not _finite_within(value, FLOAT_MAX[kind]):
                return self.out_of_range(
                    value, path, f"a finite {kind} (magnitude at most {FLOAT_MAX[kind]:.8g})"
                )
            self.range(shape, value, path)
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                return self.wrong_type(value, path, "a boolean")
            return value
        if kind == "timestamp":
            return self.timestamp(value, path)
        return value  # a document: any JSON

    def timestamp(self, value: Any, path: str) -> float | None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not _finite_within(value, MAX_EPOCH_SECONDS):
                self.out_of_range(value, path, "a timestamp (epoch seconds of the years 1-9999)")
                return None
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        self.wrong_type(value, path, "a timestamp (epoch seconds or ISO 8601)")
        return None

    def length(self, shape: Any, value: Any, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            self.fail(value, path, f"Member must have length greater than or equal to {low}")
        if high is not None and len(value) > high:
            self.fail(value, path, f"Member must have length less than or equal to {high}")

    def range(self, shape: Any, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(value, path, f"Member must have value less than or equal to {high}")


#: The last second of year 9999: an epoch time past it names no date (AWS refuses it too).
MAX_EPOCH_SECONDS = 253402300799


def _finite_within(value: float, limit: float) -> bool:
    try:
        return math.isfinite(value) and abs(value) <= limit
    except OverflowError:  # an integer too large to be any float
        return False


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


@functools.cache
def _compile(pattern: str) -> re.Pattern[str] | None:
    """SageMaker's (Java) pattern in Python's dialect; ``None`` if it has no equivalent."""
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None
