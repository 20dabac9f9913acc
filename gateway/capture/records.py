"""One captured request as SageMaker's Model Monitor reads it (``captureData`` + metadata).

CSV and JSON content types (as the config lists them) are kept as text with encoding ``CSV`` or
``JSON``; anything else, or text that is not UTF-8, is ``BASE64``, as SageMaker does.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as quoted
from typing import Any

EVENT_VERSION = "0"
#: ``inferenceTime`` up to its seconds, for the last second seen (most records share one).
_second: tuple[int, str] = (-1, "")


def encode(
    data: bytes, content_type: str | None, csv_types: list[str], json_types: list[str]
) -> tuple[str, str]:
    """``(data as text, encoding)`` for one side of a capture record."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    kind = "CSV" if base in csv_types else "JSON" if base in json_types else None
    if kind is not None:
        try:
            return data.decode("utf-8"), kind
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), "BASE64"


def inference_time(when: float) -> str:
    """ISO 8601 in UTC with milliseconds; the seconds part is formatted once per second."""
    global _second
    whole = int(when)
    second, text = _second
    if second != whole:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{min(999, int((when - whole) * 1000)):03d}Z"


def capture_record(**fields: Any) -> dict[str, Any]:
    """The record as a dict: ``capture_line`` (the one way it is made) parsed; ``request`` and
    ``response`` are ``(body, content type)``, None if not kept."""
    record: dict[str, Any] = json.loads(capture_line(**fields))
    return record


def capture_line(
    *,
    when: float,
    event_id: str,
    request: tuple[bytes, str | None] | None,
    response: tuple[bytes, str | None] | None,
    csv_types: list[str],
    json_types: list[str],
    inference_id: str | None = None,
    target_model: str | None = None,
) -> str:
    """One capture record as one JSON line, built from quoted strings: the writer's hot loop
    (faster than ``json.dumps`` of a dict)."""
    sides = []
    for side, mode, part in (
        ("endpointInput", "INPUT", request),
        ("endpointOutput", "OUTPUT", response),
    ):
        if part is None:
            continue
        body, content_type = part
        text, encoding = encode(body, content_type, csv_types, json_types)
        sides.append(
            f'"{side}":{{"observedContentType":{quoted(content_type or "")},"mode":"{mode}",'
            f'"data":{quoted(text)},"encoding":"{encoding}"}}'
        )
    metadata = f'"eventId":{quoted(event_id)}'
    if inference_id is not None:
        metadata += f',"inferenceId":{quoted(inference_id)}'
    metadata += f',"inferenceTime":"{inference_time(when)}"'
    if target_model is not None:
        metadata += f',"targetModel":{quoted(target_model)}'
    return (
        f'{{"captureData":{{{",".join(sides)}}},"eventMetadata":{{{metadata}}},'
        f'"eventVersion":"{EVENT_VERSION}"}}'
    )
