"""Data processing of SageMaker batch transform: JSONPath filters, per-record outputs, and joins.

A CSV record is treated as the JSON array of its fields (so ``$[1:]`` drops the first column, as on
SageMaker); a JSON record is its document. Everything here is plain text work on one record, with
the ``csv`` and ``json`` modules: the gateway never imports numpy or pandas.
"""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath_parse

#: An expression containing any of these may match many nodes, so its result is always a list.
_MULTI_MARKS = (":", "*", ",", "..", "?")
_JSON_TYPES = {"application/json"}
_JSONLINES_TYPES = {"application/jsonlines", "application/x-jsonlines", "application/json-lines"}
_CSV_TYPES = {"text/csv", "application/csv"}


class RecordFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONLINES = "jsonlines"
    OTHER = "other"

    @property
    def is_json(self) -> bool:
        return self in (RecordFormat.JSON, RecordFormat.JSONLINES)


def format_of(content_type: str | None) -> RecordFormat:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _CSV_TYPES:
        return RecordFormat.CSV
    if media in _JSON_TYPES:
        return RecordFormat.JSON
    if media in _JSONLINES_TYPES:
        return RecordFormat.JSONLINES
    return RecordFormat.OTHER


class JsonPathFilter:
    """One compiled JSONPath expression; ``$`` is the identity and costs nothing."""

    def __init__(self, expr: str) -> None:
        self.expr = expr.strip()
        if not self.expr.startswith("$"):
            raise ValueError(f"JSONPath {expr!r} must start with '$'")
        self.identity = self.expr == "$"
        self.multi = any(mark in self.expr for mark in _MULTI_MARKS)
        try:
            self._path = jsonpath_parse(self.expr)
        except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
            raise ValueError(f"JSONPath {expr!r} is not valid: {exc}") from exc

    def apply(self, value: Any) -> Any:
        if self.identity:
            return value
        matches = [m.value for m in self._path.find(value)]
        if self.multi:
            return matches
        if not matches:
            raise ValueError(f"JSONPath {self.expr!r} matched nothing")
        return matches[0]


# --- CSV fields <-> text ----------------------------------------------------------------------


def csv_fields(line: bytes) -> list[str]:
    text = line.decode("utf-8")
    return next(csv.reader([text]), [])


def csv_line(fields: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([_csv_cell(f) for f in fields])
    return buf.getvalue().encode("utf-8")


def _csv_cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _as_fields(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc


# --- the steps --------------------------------------------------------------------------------


def apply_input_filter(data: bytes, fmt: RecordFormat, flt: JsonPathFilter) -> bytes:
    """The payload sent for one record: the filter's selection, in the record's own format."""
    if flt.identity:
        return data
    if fmt is RecordFormat.CSV:
        return csv_line(_as_fields(flt.apply(csv_fields(data))))
    return _json(flt.apply(_load_json(data, "the record")))


def split_response(body: bytes, fmt: RecordFormat, count: int) -> list[bytes]:
    """Cut one response into one output per record, in order, each on a single line.

    JSON answers are unwrapped the same way for one record as for many (a top-level list, or an
    object with one list member such as ``{"predictions": [...]}``), so SingleRecord and
    MultiRecord runs write the same lines.
    """
    if fmt is RecordFormat.JSON:
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            doc = None  # some servers label JSON lines as application/json: try lines below
        else:
            items = _unwrap(doc)
            if items is not None and len(items) == count:
                return [_json(item) for item in items]
            if count == 1:
                return [_json(doc)]
            found = "a single document" if items is None else f"{len(items)} items"
            raise ValueError(f"the endpoint answered {found} for {count} records")
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) == count:
        return lines
    if count == 1:
        return [body.strip()]
    raise ValueError(f"the endpoint answered {len(lines)} lines for {count} records")


def _unwrap(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and len(doc) == 1:
        (value,) = doc.values()
        if isinstance(value, list):
            return value
    return None


class Shaper:
    """Turns one record's raw output into the line written for it: join, then output filter."""

    def __init__(self, *, input_format: RecordFormat, join: bool, output_filter: JsonPathFilter):
        self.input_format = input_format
        self.join = join
        self.output_filter = output_filter
        self.passthrough = not join and output_filter.identity

    def shape(self, source: bytes, output: bytes, output_format: RecordFormat) -> bytes:
        if self.passthrough:
            return output
        if self.join and self.output_filter.identity and self.input_format is RecordFormat.CSV:
            # Keep the input row byte for byte: only the output columns are appended.
            tail = (
                output if output_format is RecordFormat.CSV else self._csv_of(output, output_format)
            )
            return source + b"," + tail
        if self.join:
            value, fmt = self._join(source, output, output_format), self.input_format
        elif output_format is RecordFormat.CSV:
            value, fmt = csv_fields(output), RecordFormat.CSV
        elif output_format.is_json:
            value, fmt = _load_json(output, "the output"), RecordFormat.JSON
        else:
            raise ValueError(
                "output_filter needs CSV or JSON output; set accept to text/csv or application/json"
            )
        value = self.output_filter.apply(value)
        return csv_line(_as_fields(value)) if fmt is RecordFormat.CSV else _json(value)

    @staticmethod
    def _csv_of(output: bytes, output_format: RecordFormat) -> bytes:
        if output_format.is_json:
            return csv_line(_as_fields(_load_json(output, "the output")))
        return csv_line([output.decode("utf-8", errors="replace")])

    def _join(self, source: bytes, output: bytes, output_format: RecordFormat) -> Any:
        """SageMaker's JoinSource=Input: CSV appends columns; JSON adds ``SageMakerOutput``."""
        if output_format.is_json:
            out_value: Any = _load_json(output, "the output")
        elif output_format is RecordFormat.CSV:
            out_value = csv_fields(output)
        else:
            out_value = output.decode("utf-8", errors="replace")
        if self.input_format is RecordFormat.CSV:
            return csv_fields(source) + _as_fields(out_value)
        doc = _load_json(source, "the input record")
        if output_format is RecordFormat.CSV and len(out_value) == 1:
            out_value = out_value[0]
        if isinstance(doc, dict):
            return {**doc, "SageMakerOutput": out_value}
        return {"SageMakerInput": doc, "SageMakerOutput": out_value}
