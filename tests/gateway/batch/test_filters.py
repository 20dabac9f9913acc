"""JSONPath filters, cutting answers per record, and SageMaker's joins."""

from __future__ import annotations

import json

import pytest

from gateway.batch.filters import (
    JsonPathFilter,
    RecordFormat,
    Shaper,
    apply_input_filter,
    format_of,
    split_response,
)


def test_format_of_reads_the_media_type() -> None:
    assert format_of("text/csv; charset=utf-8") is RecordFormat.CSV
    assert format_of("application/json") is RecordFormat.JSON
    assert format_of("application/jsonlines") is RecordFormat.JSONLINES
    assert format_of(None) is RecordFormat.OTHER


def test_csv_input_filter_selects_columns_like_sagemaker() -> None:
    row = b'7,"a, b",3.5,4'
    assert apply_input_filter(row, RecordFormat.CSV, JsonPathFilter("$[1:]")) == b'"a, b",3.5,4'
    assert apply_input_filter(row, RecordFormat.CSV, JsonPathFilter("$[0,2]")) == b"7,3.5"
    assert apply_input_filter(row, RecordFormat.CSV, JsonPathFilter("$[-1]")) == b"4"
    assert apply_input_filter(row, RecordFormat.CSV, JsonPathFilter("$")) is row


def test_json_input_filter_selects_a_member() -> None:
    doc = b'{"id": 3, "features": [1, 2]}'
    assert apply_input_filter(doc, RecordFormat.JSON, JsonPathFilter("$.features")) == b"[1,2]"
    with pytest.raises(ValueError, match=r"'\$.missing' matched nothing"):
        apply_input_filter(doc, RecordFormat.JSON, JsonPathFilter("$.missing"))
    with pytest.raises(ValueError, match="not valid JSON"):
        apply_input_filter(b"{oops", RecordFormat.JSON, JsonPathFilter("$.features"))


@pytest.mark.parametrize("expr", ["features", "$[", "$.a[?(@.b ==]"])
def test_a_bad_jsonpath_is_refused(expr: str) -> None:
    with pytest.raises(ValueError, match="JSONPath"):
        JsonPathFilter(expr)


def test_split_response_cuts_csv_lines_and_json_lists() -> None:
    assert split_response(b"1\n2\n3\n", RecordFormat.CSV, 3) == [b"1", b"2", b"3"]
    wrapped = b'{"predictions": [[0.1, 0.9], [0.7, 0.3]]}'
    assert split_response(wrapped, RecordFormat.JSON, 2) == [b"[0.1,0.9]", b"[0.7,0.3]"]
    assert split_response(b"[5, 6]", RecordFormat.JSON, 2) == [b"5", b"6"]
    # One record unwraps the same way as many, so SingleRecord and MultiRecord agree.
    assert split_response(b'{"predictions": [[0.1, 0.9]]}', RecordFormat.JSON, 1) == [b"[0.1,0.9]"]
    # JSON lines labelled application/json are still cut per line.
    assert split_response(b'{"a":1}\n{"a":2}\n', RecordFormat.JSON, 2) == [b'{"a":1}', b'{"a":2}']
    assert split_response(b'{"score": 1}', RecordFormat.JSON, 1) == [b'{"score":1}']


def test_split_response_refuses_a_count_that_does_not_match() -> None:
    with pytest.raises(ValueError, match="answered 2 lines for 3 records"):
        split_response(b"1\n2\n", RecordFormat.CSV, 3)
    with pytest.raises(ValueError, match="answered 1 items for 2 records"):
        split_response(b"[1]", RecordFormat.JSON, 2)


def shaper(fmt: RecordFormat, join: bool, out: str = "$") -> Shaper:
    return Shaper(input_format=fmt, join=join, output_filter=JsonPathFilter(out))


def test_csv_join_keeps_the_input_row_and_appends_the_output_columns() -> None:
    s = shaper(RecordFormat.CSV, join=True)
    row = b'1,"x, y",2'
    assert s.shape(row, b"0.5,0.5", RecordFormat.CSV) == row + b",0.5,0.5"
    assert s.shape(row, b"[0.25, 0.75]", RecordFormat.JSON) == row + b",0.25,0.75"
    # With an output filter the joined row is one array: keep the id and the last column.
    s = shaper(RecordFormat.CSV, join=True, out="$[0,-1]")
    assert s.shape(row, b"0.1,0.9", RecordFormat.CSV) == b"1,0.9"


def test_json_join_adds_sagemaker_output_and_wraps_non_objects() -> None:
    s = shaper(RecordFormat.JSON, join=True)
    got = json.loads(s.shape(b'{"id": 1}', b"[0.5]", RecordFormat.JSON))
    assert got == {"id": 1, "SageMakerOutput": [0.5]}
    got = json.loads(s.shape(b"[1, 2]", b"3", RecordFormat.CSV))
    assert got == {"SageMakerInput": [1, 2], "SageMakerOutput": "3"}
    s = shaper(RecordFormat.JSON, join=True, out="$['id','SageMakerOutput']")
    assert json.loads(s.shape(b'{"id": 4, "f": [1]}', b"7.5", RecordFormat.JSON)) == [4, 7.5]


def test_output_filter_without_join_works_on_the_output() -> None:
    s = shaper(RecordFormat.OTHER, join=False, out="$[1]")
    assert s.shape(b"ignored", b"[0.1, 0.9]", RecordFormat.JSON) == b"0.9"
    assert s.shape(b"ignored", b"0.1,0.9", RecordFormat.CSV) == b"0.9"
    with pytest.raises(ValueError, match="output_filter needs CSV or JSON output"):
        s.shape(b"ignored", b"yes", RecordFormat.OTHER)
    assert shaper(RecordFormat.OTHER, join=False).passthrough
