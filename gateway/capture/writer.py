"""The capture writer: a bounded buffer filled by the hot path, emptied by a background task.

``offer`` appends a tuple and returns: no JSON, no I/O, no lock (one event loop). Every
``flush_interval`` (or as soon as ``batch`` records wait) the task takes the buffer, turns it into
JSON Lines on the loop in small slices (one object per variant and hour) and writes them in a
thread. A write that fails is kept and tried again with backoff, oldest first;
while it fails new records stay in the buffer, so memory stays bounded by the buffer: what no
longer fits is dropped and counted, never waited for. ``aclose`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.capture.destination import CaptureStoreError, Store
from gateway.capture.records import capture_line
from pipelines.spec import CaptureMode, DataCaptureSpec

log = logging.getLogger("tandem.capture")

#: Records the buffer holds before new ones are dropped.
DEFAULT_BUFFER = 10_000
#: Records that wake the writer before its interval is up.
DEFAULT_BATCH = 1_000
#: Objects that failed to be written, kept for another try before the oldest is dropped.
MAX_PENDING = 64
MAX_BACKOFF = 30.0
#: Records encoded between two turns of the loop (about 8 µs each for a small CSV row).
ENCODE_SLICE = 64

_Item = tuple[float, str, bytes, str | None, bytes | None, str | None, str, str | None, str | None]
#: One object to write: (key under the destination, bytes, variant, records in it).
_Object = tuple[str, bytes, str, int]


class CaptureWriter:
    def __init__(
        self,
        endpoint: str,
        spec: DataCaptureSpec,
        *,
        destination: str | None = None,
        s3_endpoint_url: str | None = None,
        buffer: int = DEFAULT_BUFFER,
        batch: int = DEFAULT_BATCH,
        flush_interval: float = 1.0,
    ) -> None:
        self.endpoint = endpoint
        self.spec = spec
        self.share = float(spec.initial_sampling_percentage) if spec.enable_capture else 0.0
        self.store = Store(destination or spec.destination, s3_endpoint_url=s3_endpoint_url)
        self.limit = buffer
        self.batch = max(1, min(batch, buffer))
        self.flush_interval = flush_interval
        self.input = CaptureMode.INPUT in spec.capture_options
        self.output = CaptureMode.OUTPUT in spec.capture_options
        self._buffer: deque[_Item] = deque()
        self._pending: deque[_Object] = deque()
        self._failures = 0
        self._retry_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        #: (variant, outcome) -> records; outcome: captured, written, dropped, failed.
        self.counts: Counter[tuple[str, str]] = Counter()

    def sampled(self) -> bool:
        share = self.share
        return share >= 100.0 or (share > 0.0 and random.random() * 100.0 < share)

    def offer(
        self,
        variant: str,
        body: bytes,
        content_type: str | None,
        answer: bytes | None,
        answer_type: str | None,
        *,
        event_id: str,
        inference_id: str | None = None,
        target_model: str | None = None,
    ) -> None:
        """Keep one request and its answer for writing; never waits, never raises."""
        if len(self._buffer) >= self.limit:
            self.counts[(variant, "dropped")] += 1
            return
        self._buffer.append(
            (time.time(), variant, body, content_type, answer, answer_type, event_id,
             inference_id, target_model)
        )  # fmt: skip
        self.counts[(variant, "captured")] += 1
        if len(self._buffer) == self.batch and self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"capture {self.endpoint}"
        )

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.flush_interval)
            wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug must not end capture for good
                log.exception("%s: capture flush failed", self.endpoint)

    async def flush(self, *, force: bool = False) -> None:
        """Write what is buffered, and retry what failed before (now if ``force``)."""
        if self._pending and not force and time.monotonic() < self._retry_at:
            return  # the store is failing: new records wait in the (bounded) buffer
        if self._buffer:
            items, self._buffer = self._buffer, deque()
            for obj in await self._encode_yielding(items):
                if len(self._pending) >= MAX_PENDING:
                    _, _, old_variant, old_count = self._pending.popleft()
                    self.counts[(old_variant, "dropped")] += old_count
                self._pending.append(obj)
        while self._pending:
            key, data, variant, count = self._pending[0]
            try:
                await asyncio.to_thread(self.store.put, key, data)
            except CaptureStoreError as exc:
                self._failures += 1
                backoff = min(MAX_BACKOFF, 0.2 * 2 ** min(self._failures, 10))
                self._retry_at = time.monotonic() + backoff
                self.counts[(variant, "failed")] += count
                log.warning("%s: capture write failed (retry in %.1fs): %s", self.endpoint,
                            backoff, exc)  # fmt: skip
                return
            self._pending.popleft()
            self._failures = 0
            self.counts[(variant, "written")] += count

    async def _encode_yielding(self, items: deque[_Item]) -> list[_Object]:
        """Records as JSON Lines objects, one per variant and hour, a slice at a time on the loop.

        Not in a thread: a thread that computes holds the GIL for the interpreter's whole switch
        interval (5 ms) each time the loop gives it up for a socket call, which cut the gateway's
        req/s by almost half at 100% capture; a slice of a few hundred microseconds does not.
        """
        groups: dict[tuple[str, str], tuple[float, list[str]]] = {}
        while items:
            chunk = [items.popleft() for _ in range(min(ENCODE_SLICE, len(items)))]
            self._lines(chunk, groups)
            if items:
                await asyncio.sleep(0)
        return self._objects(groups)

    def _lines(
        self, items: Iterable[_Item], groups: dict[tuple[str, str], tuple[float, list[str]]]
    ) -> None:
        csv, js = self.spec.csv_content_types, self.spec.json_content_types
        for when, variant, body, ctype, answer, atype, event, inference, target in items:
            line = capture_line(
                when=when,
                event_id=event,
                request=(body, ctype) if self.input else None,
                response=(answer, atype) if self.output and answer is not None else None,
                csv_types=csv,
                json_types=js,
                inference_id=inference,
                target_model=target,
            )
            hour = datetime.fromtimestamp(when, UTC).strftime("%Y/%m/%d/%H")
            groups.setdefault((variant, hour), (when, []))[1].append(line)

    def _objects(self, groups: dict[tuple[str, str], tuple[float, list[str]]]) -> list[_Object]:
        objects: list[_Object] = []
        for (variant, hour), (first, lines) in groups.items():
            # Named by its first record's time, so names sort by time within their hour.
            name = f"{datetime.fromtimestamp(first, UTC):%M-%S-%f}"[:9] + f"-{uuid.uuid4()}.jsonl"
            key = f"{self.endpoint}/{variant}/{hour}/{name}"
            objects.append((key, ("\n".join(lines) + "\n").encode(), variant, len(lines)))
        return objects

    async def aclose(self, *, attempts: int = 3) -> None:
        """Stop the task and write what is left (a clean shutdown loses no record)."""
        if self._task is not None:
            # Not cancelled: a cancel mid-flush would lose the records being encoded, or write
            # an object twice. The task ends after the flush it is in (or one more).
            self._closing = True
            if self._wake is not None:
                self._wake.set()
            await self._task
            self._task = None
        for _ in range(attempts):
            await self.flush(force=True)
            if not self._pending:
                return
        left = sum(count for *_, count in self._pending)
        log.error("%s: %d captured records could not be written", self.endpoint, left)


class CaptureCollector(Collector):
    """``tandem_data_capture_records{endpoint,variant,outcome}``, read from the writers."""

    def __init__(self, writers: Callable[[], Iterable[CaptureWriter]]) -> None:
        self._writers = writers

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "tandem_data_capture_records",
            "Data capture records: captured (sampled), written, dropped (buffer full), failed "
            "(writes that failed and are retried)",
            labels=["endpoint", "variant", "outcome"],
        )
        for writer in self._writers():
            for (variant, outcome), count in sorted(writer.counts.items()):
                family.add_metric([writer.endpoint, variant, outcome], float(count))
        yield family
