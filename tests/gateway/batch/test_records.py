"""Splitting files into records and records into requests."""

from __future__ import annotations

import io

import pytest

from gateway.batch.config import BatchStrategy, SplitType
from gateway.batch.errors import RecordError
from gateway.batch.records import Record, mini_batches, read_records


def records(data: bytes, split: SplitType = SplitType.LINE) -> list[tuple[Record, int]]:
    return list(read_records(io.BytesIO(data), split))


def test_line_split_skips_blank_lines_and_keeps_line_numbers() -> None:
    got = records(b"a,1\r\n\n  \nb,2\nc,3")
    assert [(r.number, r.line, r.data) for r, _ in got] == [
        (1, 1, b"a,1"),
        (2, 4, b"b,2"),
        (3, 5, b"c,3"),
    ]
    # Every input byte is accounted to some record, for progress.
    assert sum(used for _, used in got) == len(b"a,1\r\n") + len(b"b,2\n") + len(b"c,3")


def test_no_split_makes_the_file_one_record_and_an_empty_file_none() -> None:
    ((record, used),) = records(b"1,2\n3,4\n", SplitType.NONE)
    assert record.data == record.payload == b"1,2\n3,4\n" and used == 8
    assert records(b"", SplitType.NONE) == []


def test_transform_makes_the_payload_and_names_the_record_it_fails_on() -> None:
    def upper(data: bytes) -> bytes:
        if data == b"bad":
            raise ValueError("nope")
        return data.upper()

    stream = io.BytesIO(b"x\n\nbad\n")
    it = read_records(stream, SplitType.LINE, upper)
    first, _ = next(it)
    assert (first.data, first.payload) == (b"x", b"X")
    with pytest.raises(
        RecordError, match=r"record 2 \(line 3\): input_filter failed: nope"
    ) as info:
        next(it)
    assert (info.value.record, info.value.line) == (2, 3)


def test_multi_record_fills_requests_up_to_the_limit_without_splitting_records() -> None:
    data = b"".join(b"%04d\n" % i for i in range(10))  # ten 4-byte records
    batches = list(mini_batches(records(data), BatchStrategy.MULTI_RECORD, 14))
    # 3 records = 4*3 + 2 separators = 14 bytes: fits exactly; a 4th would not.
    assert [len(b.records) for b in batches] == [3, 3, 3, 1]
    assert [b.seq for b in batches] == [0, 1, 2, 3]
    assert all(b.size <= 14 and len(b.body) == b.size for b in batches)
    assert batches[0].body == b"0000\n0001\n0002"
    assert b"".join(b.body + b"\n" for b in batches) == data
    assert sum(b.input_bytes for b in batches) == len(data)


def test_single_record_sends_one_record_per_request() -> None:
    batches = list(mini_batches(records(b"a\nb\nc\n"), BatchStrategy.SINGLE_RECORD, 100))
    assert [b.body for b in batches] == [b"a", b"b", b"c"]
    assert batches[1].describe() == "record 2 (line 2)"


def test_a_record_over_the_limit_is_an_error_naming_it() -> None:
    data = b"ok\n" + b"x" * 50 + b"\nok\n"
    with pytest.raises(RecordError, match=r"record 2 \(line 2\) is 50 bytes, more than") as info:
        list(mini_batches(records(data), BatchStrategy.MULTI_RECORD, 49))
    assert info.value.record == 2


def test_describe_names_the_range_of_a_multi_record_batch() -> None:
    (batch,) = mini_batches(records(b"a\n\nb\nc\n"), BatchStrategy.MULTI_RECORD, 100)
    assert batch.describe() == "records 1-3 (lines 1-4)"
