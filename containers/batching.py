"""Adaptive batching: concurrent requests for one model, stacked into one model call.

A TensorFlow or PyTorch call costs about the same for 1 row as for 32, so at concurrency most of a
core goes to per-call overhead. Each model with batching on (``TANDEM_MAX_BATCH_SIZE`` > 1) gets a
:class:`Batcher`. Requests decode on the event loop; those whose rows stack (same framework key,
content type and accept) queue, and one batch runs at a time: while it predicts, arrivals queue,
and when it ends the queue forms the next batch. A request alone is never held back: it goes
straight in (a model in worker threads), or its batch closes on the next loop turn (a model on the
loop, so that requests read in the same turn join). A batch waits, within
``max_batch_delay_ms``, only for requests still reading their bodies, or for as many callers as
the batch answered just now (no longer than that call took). The prediction is split back by rows
and encoded per caller in its own ``Accept``. When a stacked call fails, each request is predicted
alone, so one request's bad rows fail only that request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from containers.batching_metrics import BatchMetrics
from containers.errors import ContainerError, PredictionTimeout
from containers.handler import Context, ModelHandler

log = logging.getLogger(__name__)

#: Callers of a batch answered this recently are expected back (a closed loop of clients); later,
#: a request counts as alone.
RETURN_S = 0.001
#: (body, content type) per caller, or the error that caller gets.
Outcome = tuple[bytes, str] | BaseException
#: Runs a job: on the loop (its result), or in a worker thread (a future); then body bytes and
#: the number of requests in it.
Dispatch = Callable[
    [Callable[[], list[Outcome]], int, int], "list[Outcome] | asyncio.Future[list[Outcome]]"
]


@runtime_checkable
class RowBatching(Protocol):
    """What a framework implements so its default ``input_fn`` output can be stacked."""

    def batch_rows(self, data: Any) -> tuple[Hashable, int] | None:
        """(key, rows) of decoded input; ``None`` when it has no batch dimension to stack on."""

    def stack(self, items: list[Any]) -> Any:
        """One input holding every item's rows in order (items share a key)."""

    def split(self, prediction: Any, counts: list[int]) -> list[Any] | None:
        """The prediction cut back into one part per item; ``None`` when it is not per row."""


def split_rows(value: Any, counts: Sequence[int]) -> list[Any] | None:
    """Cut arrays, tensors, sparse matrices (and dicts / tuples of them) along their first axis."""
    total = sum(counts)
    if isinstance(value, Mapping):
        columns = {key: split_rows(column, counts) for key, column in value.items()}
        if not columns or any(column is None for column in columns.values()):
            return None
        return [
            {key: column[i] for key, column in columns.items() if column is not None}
            for i in range(len(counts))
        ]
    if isinstance(value, list | tuple):
        if value and all(hasattr(item, "shape") for item in value):  # several outputs
            parts = [split_rows(item, counts) for item in value]
            if all(part is not None for part in parts):
                cut = [part for part in parts if part is not None]
                return [type(value)(part[i] for part in cut) for i in range(len(counts))]
        if len(value) != total:
            return None
        return [value[start:end] for start, end in _bounds(counts)]
    shape = getattr(value, "shape", None)
    if not shape or shape[0] != total:
        return None
    return [value[start:end] for start, end in _bounds(counts)]


def _bounds(counts: Sequence[int]) -> Iterator[tuple[int, int]]:
    start = 0
    for count in counts:
        yield start, start + count
        start += count


@dataclass(eq=False)
class Pending:
    """One caller's decoded request, waiting for its batch."""

    data: Any
    key: Hashable
    rows: int
    accept: str
    context: Context
    size: int
    future: asyncio.Future[tuple[bytes, str]]
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """One model's queue and its single running batch, driven by loop callbacks (no task)."""

    def __init__(
        self,
        name: str,
        handler: ModelHandler,
        model: Any,
        support: RowBatching,
        *,
        max_size: int,
        max_delay_s: float,
        timeout_s: float,
        dispatch: Dispatch,
        on_loop: Callable[[int], bool],
        metrics: BatchMetrics,
    ) -> None:
        self.name = name
        self.handler = handler
        self.model = model
        self.support = support
        self.max_size = max_size
        self.max_delay = max_delay_s
        self.timeout = timeout_s
        self._dispatch = dispatch
        #: Whether a job of so many body bytes would run on the event loop.
        self._on_loop = on_loop
        self._queue: deque[Pending] = deque()
        self._size, self._wait = metrics.bind(name, lambda: len(self._queue))
        #: A batch runs in a worker thread: arrivals queue for the next one.
        self._busy = False
        #: A call of ``_close`` is pending (next loop turn, or the delay's timer).
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        #: Requests for this model still reading their bodies: worth waiting for, up to the delay.
        self._arriving = 0
        #: False once the model's output turned out not to be per row: then nothing is stacked.
        self.enabled = True
        #: The last batch's size and when it was answered: its callers are likely to come back.
        self._last_size = 1
        self._last_end = 0.0
        self._target = 1
        #: Seconds the last model call took: the most a batch waits for returning callers.
        self._cost = 0.0
        self._began = 0.0

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around reading a request's body, so a forming batch knows more is on its way."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1
            if not self._arriving and self._timer is not None:
                self._timer.cancel()  # nobody else is coming: close the batch now
                self._timer = None
                asyncio.get_running_loop().call_soon(self._close)

    def rows_of(self, data: Any) -> tuple[Hashable, int] | None:
        return self.support.batch_rows(data) if self.enabled else None

    def submit(
        self, data: Any, key: Hashable, rows: int, accept: str, context: Context, size: int
    ) -> asyncio.Future[tuple[bytes, str]]:
        """Queue one decoded request; the future is its encoded answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bytes, str]] = loop.create_future()
        alone = not self._queue
        self._queue.append(Pending(data, key, rows, accept, context, size, future))
        if alone and not self._busy and not self._scheduled and self._solo(size):
            # Nothing waits, the last batch was one request or is long over, and the model runs
            # in a thread: straight in; requests arriving while it predicts form the next batch.
            # (On the loop it would answer before the next request of this turn even queued, so
            # those batches close on the next turn instead.)
            self._start(self._take())
        elif not self._busy and not self._scheduled:
            # Next loop turn: the requests read in this turn queue first and join the batch.
            self._scheduled = True
            loop.call_soon(self._close)
        elif self._timer is not None and len(self._queue) >= self._target:
            self._timer.cancel()  # as many as last time are back: go
            self._timer = None
            loop.call_soon(self._close)
        return future

    def _close(self) -> None:
        """Form a batch from the queue and start it (unless one runs, or more is on its way)."""
        self._scheduled = False
        self._timer = None
        if self._busy or not self._queue:
            return
        if self.max_delay > 0:
            now = time.perf_counter()
            # Concurrent callers answered just now come back within the delay: wait for as many
            # (a request after a quiet spell, or in a stream of lone requests, never waits), but
            # no longer than the last model call took: waiting must not cost more than a call.
            self._target = min(self.max_size, self._last_size) if self._recent() else 1
            waiting = self._group_size()
            if self._arriving and waiting < self.max_size:
                remaining = self._queue[0].queued + self.max_delay - now
            elif waiting < self._target:
                wait = min(self.max_delay, self._cost)  # from the oldest request's arrival
                remaining = self._queue[0].queued + wait - now
            else:
                remaining = 0.0
            if remaining > 0:
                self._scheduled = True
                self._timer = asyncio.get_running_loop().call_later(remaining, self._close)
                return
        self._start(self._take())

    def _solo(self, size: int) -> bool:
        return not self._on_loop(size) and (self._last_size == 1 or not self._recent())

    def _recent(self) -> bool:
        """The last batch was answered just now: its callers may be on their way back."""
        return time.perf_counter() - self._last_end < min(self.max_delay, RETURN_S)

    def _group_size(self) -> int:
        key = self._queue[0].key
        return sum(1 for pending in self._queue if pending.key == key)

    def _take(self) -> list[Pending]:
        """The oldest request and the next ones with its key, up to ``max_size``."""
        queue = self._queue
        key = queue[0].key
        if len(queue) <= self.max_size and all(pending.key == key for pending in queue):
            self._queue = deque()
            return list(queue)
        batch: list[Pending] = []
        rest: deque[Pending] = deque()
        for pending in queue:
            if pending.key == key and len(batch) < self.max_size:
                batch.append(pending)
            else:
                rest.append(pending)
        self._queue = rest
        return batch

    def _start(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        live = [pending for pending in batch if not pending.future.done()]
        if not live:
            self._next()
            return
        for pending in live:
            self._wait.observe(started - pending.queued)
        self._size.observe(len(live))
        self._last_size = len(live)
        self._began = started
        try:
            ran = self._dispatch(
                lambda: self._job(live), sum(pending.size for pending in live), len(live)
            )
        except Exception as exc:  # a bug, or the pool shut down
            _settle(live, exc)
            self._next()
            return
        if not isinstance(ran, asyncio.Future):
            _settle(live, ran)  # it ran on the loop
            self._next()  # other keys may be queued
            return
        self._busy = True
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(self.timeout, self._expire, ran, live)
        ran.add_done_callback(lambda done: self._finish(done, live, expiry))

    def _finish(
        self, ran: asyncio.Future[list[Outcome]], live: list[Pending], expiry: asyncio.TimerHandle
    ) -> None:
        expiry.cancel()
        if ran.cancelled():  # expired: the next batch already started
            return
        exc = ran.exception()
        _settle(live, ran.result() if exc is None else exc)
        self._next()

    def _expire(self, ran: asyncio.Future[list[Outcome]], live: list[Pending]) -> None:
        """The batch passed the time limit: its callers get 504; its thread ends on its own."""
        log.warning("a batch of %d for %s passed %ss", len(live), self.name, self.timeout)
        _settle(
            live,
            PredictionTimeout(
                f"the prediction took longer than SAGEMAKER_MODEL_SERVER_TIMEOUT={self.timeout:g}s"
            ),
        )
        ran.cancel()
        self._next()

    def _next(self) -> None:
        """A batch ended: what queued meanwhile (or has another key) forms the next one."""
        self._busy = False
        self._last_end = time.perf_counter()
        self._cost = self._last_end - self._began
        if self._queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._close)

    def _job(self, batch: list[Pending]) -> list[Outcome]:
        """Runs inline or in a worker thread: one stacked call, else one call per request."""
        if len(batch) == 1:
            return [self._alone(batch[0])]
        handler = self.handler
        try:
            stacked = self.support.stack([pending.data for pending in batch])
            prediction = handler.predict_fn(stacked, self.model, context=batch[0].context)
        except Exception as exc:  # somebody's rows were bad: find out whose
            log.debug("batch of %d for %s failed: %s", len(batch), self.name, exc)
            return [self._alone(pending) for pending in batch]
        try:
            parts = self.support.split(prediction, [pending.rows for pending in batch])
        except Exception:  # e.g. a sparse format without row slicing
            log.debug("cannot split %s's output by rows", self.name, exc_info=True)
            parts = None
        if parts is None:
            self.enabled = False
            log.warning(
                "model %s: its output is not one row per input row, so its requests are no "
                "longer batched",
                self.name,
            )
            return [self._alone(pending) for pending in batch]
        return [self._encode(pending, part) for pending, part in zip(batch, parts, strict=True)]

    def _alone(self, pending: Pending) -> Outcome:
        try:
            prediction = self.handler.predict_fn(pending.data, self.model, context=pending.context)
        except ContainerError as exc:
            return exc
        return self._encode(pending, prediction)

    def _encode(self, pending: Pending, prediction: Any) -> Outcome:
        try:
            return self.handler.encode(prediction, pending.accept, pending.context)
        except ContainerError as exc:
            return exc


def _settle(live: list[Pending], outcome: list[Outcome] | BaseException) -> None:
    """Answer each caller still waiting: its own outcome, or one error for all."""
    for index, pending in enumerate(live):
        if pending.future.done():  # the caller timed out or went away
            continue
        result = outcome if isinstance(outcome, BaseException) else outcome[index]
        if isinstance(result, BaseException):
            pending.future.set_exception(result)
        else:
            pending.future.set_result(result)
