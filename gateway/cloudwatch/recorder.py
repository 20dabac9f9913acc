"""The hot path's side of the metric store: each event is one tuple appended to a deque.

``deque.append`` is atomic under the GIL, so the event loop, worker threads and the flusher
share it without a lock, and a request pays a clock read and a tuple. The flusher ``drain``s it
into datapoints (``rollup.py``): one ``Stats`` per metric, dimension set, unit and time bucket.
The deque is bounded (``MAX_EVENTS``): if the flusher could not keep up, the oldest events are
dropped rather than memory growing without end (at 10,000 requests a second and a 10 s flush it
holds about a fifth of the bound).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.cloudwatch.names import StatusClass
from gateway.cloudwatch.rollup import (
    BACKLOG,
    CACHE,
    COMPONENT,
    COMPONENT_CONCURRENT,
    COMPONENT_NO_CAPACITY,
    CONCURRENT,
    COPIES,
    COUNT,
    INVOCATION,
    LOADED,
    NO_CAPACITY,
    SAMPLE,
    SETUP,
    UNLOADED,
    Dims,
    Rollup,
    Rollups,
    dims,
)

__all__ = ["Dims", "Recorder", "Rollup", "dims"]

#: Events held between two flushes, at most.
MAX_EVENTS = 1_000_000


class Recorder:
    """What the serving side reports (``MetricRecorder``), over a bounded deque; ``drain()`` is
    the flusher's. Every report returns at once (no I/O, no lock).

    Latencies are integers in microseconds, as CloudWatch's SageMaker metrics are.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._events: deque[tuple[Any, ...]] = deque(maxlen=MAX_EVENTS)
        self._append = self._events.append
        self._rollups = Rollups()
        self._taps: list[Callable[[list[tuple[Any, ...]]], None]] = []

    # ---- what the serving side reports ----------------------------------------------------------

    def invocation(
        self,
        endpoint: str,
        variant: str,
        target_model: str | None,
        status: StatusClass,
        model_us: int | None,
        overhead_us: int | None,
        bytes_in: int,
        bytes_out: int,
        *,
        model_status: int | None = None,
        component: str | None = None,
        container_us: int | None = None,
    ) -> None:
        """A finished request (``model_us``/``overhead_us`` None when no container answered;
        ``model_status`` the container's status for a ``model-error``; ``container_us`` the
        containers' own time as they reported it, the usage ledger's model time, None: as
        ``model_us``; ``component`` the inference component it named, for the usage ledger).
        ``model_us`` is ``ModelLatency``: as the gateway saw it, the hop in."""
        self._append(
            (
                INVOCATION, self._clock(), endpoint, variant, target_model, status, model_us,
                overhead_us, bytes_in, bytes_out, model_status, container_us, component,
            )
        )  # fmt: skip

    def concurrent_requests(self, endpoint: str, variant: str, in_flight: int) -> None:
        """The requests in flight on the variant's instance that just took one (10 s data)."""
        self._append((CONCURRENT, self._clock(), endpoint, variant, in_flight))

    def model_cache(
        self, endpoint: str, variant: str, target_model: str, hit: bool, wait_us: int | None
    ) -> None:
        """A MultiModel request found its model loaded (hit) or waited ``wait_us`` for it."""
        self._append((CACHE, self._clock(), endpoint, variant, target_model, hit, wait_us))

    def model_loaded(
        self,
        endpoint: str,
        variant: str,
        target_model: str,
        download_us: int | None,
        load_us: int,
        loaded_count: int,
        *,
        size_bytes: int | None = None,
    ) -> None:
        """A model was loaded (``download_us`` None when it came from the disk cache;
        ``size_bytes`` the resident memory it added, as the model manager measured it)."""
        self._append(
            (LOADED, self._clock(), endpoint, variant, target_model, download_us, load_us,
             loaded_count, size_bytes)
        )  # fmt: skip

    def model_unloaded(
        self, endpoint: str, variant: str, target_model: str, unload_us: int, loaded_count: int
    ) -> None:
        """A model was unloaded from a container's memory."""
        self._append(
            (UNLOADED, self._clock(), endpoint, variant, target_model, unload_us, loaded_count)
        )

    def model_setup(self, endpoint: str, variant: str, setup_us: int) -> None:
        """An instance took ``setup_us`` from start to its first healthy ``/ping``."""
        self._append((SETUP, self._clock(), endpoint, variant, setup_us))

    def instance_count(self, endpoint: str, variant: str, count: int) -> None:
        """The variant now runs ``count`` instances (``InvocationsPerInstance`` divides by it)."""
        self._append((COUNT, self._clock(), endpoint, variant, count))

    def instance_sample(
        self, endpoint: str, variant: str, cpu: float, memory: float, disk: float
    ) -> None:
        """One sample of an instance's CPU (100 per busy core), memory and disk use, percent."""
        self._append((SAMPLE, self._clock(), endpoint, variant, cpu, memory, disk))

    def backlog(
        self, endpoint: str, size: int, per_instance: float, oldest_s: float, without_capacity: bool
    ) -> None:
        """An async endpoint's queue, sampled."""
        self._append(
            (BACKLOG, self._clock(), endpoint, size, per_instance, oldest_s, without_capacity)
        )

    def no_capacity(self, endpoint: str, variant: str) -> None:
        """A real-time request found the variant at zero instances (it is held)."""
        self._append((NO_CAPACITY, self._clock(), endpoint, variant, 1.0))

    def component_invocation(
        self,
        component: str,
        status: StatusClass,
        model_us: int | None,
        overhead_us: int | None,
        *,
        model_status: int | None = None,
    ) -> None:
        """A finished request to an inference component (besides its ``invocation``)."""
        self._append(
            (COMPONENT, self._clock(), component, status, model_us, overhead_us, model_status)
        )

    def component_concurrent(self, component: str, per_copy: float) -> None:
        """The component's requests in flight over its copies, as one more arrived (10 s)."""
        self._append((COMPONENT_CONCURRENT, self._clock(), component, per_copy))

    def component_no_capacity(self, component: str) -> None:
        """A request found the component at zero copies (it is held)."""
        self._append((COMPONENT_NO_CAPACITY, self._clock(), component, 1.0))

    def copy_count(self, component: str, copies: int, endpoint: str, variant: str) -> None:
        """The component (on ``endpoint``'s ``variant``) now runs ``copies`` copies
        (``InvocationsPerCopy`` divides by it; the usage ledger's ``copy_hours``)."""
        self._append((COPIES, self._clock(), component, copies, endpoint, variant))

    # ---- the flusher's side ---------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._events)

    def tap(self, consumer: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Hand every drained batch of raw events to ``consumer`` too (in the flusher's thread,
        before the rollup): a second reader of the same events, such as the usage ledger."""
        self._taps.append(consumer)

    def per_model(self, keep: Callable[[str, str, str], bool] | None) -> None:
        """Keep ``TargetModel`` series only for the models ``keep(endpoint, variant, model)``
        says (the usage ledger's top models); None: for every model."""
        self._rollups.per_model = keep

    def drain(self) -> Rollup:
        """Every event recorded so far, rolled up into datapoints (and forgotten)."""
        if not self._taps:
            return self._rollups.roll(self._events)
        popleft = self._events.popleft  # what is appended meanwhile stays for the next drain
        batch = [popleft() for _ in range(len(self._events))]
        for consumer in self._taps:
            consumer(batch)
        return self._rollups.roll(deque(batch))
