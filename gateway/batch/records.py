"""Records and mini-batches: how a file becomes requests.

A record is never split across requests. ``SplitType=None`` makes the whole file one record;
``Line`` makes each non-blank line one. ``MultiRecord`` fills a request with as many whole records
as fit under the payload limit (joined by newlines); ``SingleRecord`` sends one per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from gateway.batch.config import BatchStrategy, SplitType
from gateway.batch.errors import RecordError


@dataclass(slots=True)
class Record:
    #: 1-based position among the file's records, and the line the record starts on.
    number: int
    line: int
    #: The record as read (no line ending), kept for a join; ``payload`` is what is sent.
    data: bytes
    payload: bytes


@dataclass(slots=True)
class MiniBatch:
    #: 0-based position among the file's batches: outputs are written in this order.
    seq: int
    records: list[Record] = field(default_factory=list)
    #: Bytes of input this batch covers (line endings included), for progress.
    input_bytes: int = 0

    @property
    def body(self) -> bytes:
        if len(self.records) == 1:
            return self.records[0].payload
        return b"\n".join(r.payload for r in self.records)

    @property
    def size(self) -> int:
        return sum(len(r.payload) for r in self.records) + max(0, len(self.records) - 1)

    def describe(self) -> str:
        first, last = self.records[0], self.records[-1]
        if first is last:
            return f"record {first.number} (line {first.line})"
        return f"records {first.number}-{last.number} (lines {first.line}-{last.line})"


def read_records(
    stream: BinaryIO, split: SplitType, transform: Callable[[bytes], bytes] | None = None
) -> Iterator[tuple[Record, int]]:
    """Yield each record with the input bytes it used; ``transform`` makes its payload."""
    if split is SplitType.NONE:
        data = stream.read()
        if data.strip():  # an empty file has no record, and so an empty output
            yield _record(1, 1, data, transform), len(data)
        return
    number = 0
    for lineno, raw in enumerate(stream, start=1):
        data = raw.rstrip(b"\r\n")
        if not data.strip():
            continue  # blank lines are not records (a trailing newline makes none)
        number += 1
        yield _record(number, lineno, data, transform), len(raw)


def _record(
    number: int, line: int, data: bytes, transform: Callable[[bytes], bytes] | None
) -> Record:
    if transform is None:
        return Record(number, line, data, data)
    try:
        payload = transform(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"record {number} (line {line}): input_filter failed: {exc}", record=number, line=line
        ) from exc
    return Record(number, line, data, payload)


def mini_batches(
    records: Iterable[tuple[Record, int]], strategy: BatchStrategy, max_bytes: int
) -> Iterator[MiniBatch]:
    """Group records into requests of at most ``max_bytes``; a larger record is an error."""
    multi = strategy is BatchStrategy.MULTI_RECORD
    batch = MiniBatch(0)
    size = 0
    for record, used in records:
        length = len(record.payload)
        if length > max_bytes:
            raise RecordError(
                f"record {record.number} (line {record.line}) is {length:,} bytes, more than the "
                f"payload limit of {max_bytes:,} bytes (max_payload_mb); records are never split",
                record=record.number,
                line=record.line,
            )
        grown = size + length + (1 if batch.records else 0)
        if batch.records and (not multi or grown > max_bytes):
            yield batch
            batch = MiniBatch(batch.seq + 1)
            grown = length
        batch.records.append(record)
        batch.input_bytes += used
        size = grown
    if batch.records:
        yield batch
