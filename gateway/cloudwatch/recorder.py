"""The hot path's side of the metric store: each event is one tuple appended to a deque.

``deque.append`` is atomic under the GIL, so the event loop, worker threads and the flusher
share it without a lock, and a request pays a clock read and a tuple. The flusher ``drain``s it
into datapoints (``Rollup``): one ``Stats`` per metric, dimension set, unit and time bucket.
The deque is bounded (``MAX_EVENTS``): if the flusher could not keep up, the oldest events are
dropped rather than memory growing without end (at 10,000 requests a second and a 10 s flush it
holds about a fifth of the bound).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from gateway.cloudwatch import names as n
from gateway.cloudwatch.names import Metric, StatusClass
from gateway.cloudwatch.sketch import Stats

#: Events held between two flushes, at most.
MAX_EVENTS = 1_000_000
#: Dimension sets cached between flushes, at most (then the cache starts over).
MAX_DIMENSION_SETS = 100_000

#: A datapoint's identity: namespace, name, dimensions (sorted (Name, Value) pairs), unit,
#: resolution in seconds, and the start of its time bucket (epoch seconds).
Dims = tuple[tuple[str, str], ...]
Key = tuple[str, str, Dims, str, int, int]
Rollup = dict[Key, Stats]

_INVOCATION, _CONCURRENT, _CACHE, _LOADED, _UNLOADED = range(5)
_SETUP, _COUNT, _SAMPLE, _BACKLOG = range(5, 9)


def dims(**values: str) -> Dims:
    """Canonical dimensions: CloudWatch treats a metric's dimensions as a set."""
    return tuple(sorted(values.items()))


class Recorder:
    """``MetricRecorder`` over a bounded deque; ``drain()`` is the flusher's."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._events: deque[tuple[Any, ...]] = deque(maxlen=MAX_EVENTS)
        self._append = self._events.append
        #: (endpoint, variant) -> instances, as the events drained so far say.
        self._instances: dict[tuple[str, str], int] = {}
        #: (endpoint, variant, model) -> canonical dimensions, made once.
        self._dims: dict[tuple[str, str | None, str | None], Dims] = {}

    # ---- MetricRecorder -------------------------------------------------------------------------

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
    ) -> None:
        self._append(
            (
                _INVOCATION, self._clock(), endpoint, variant, target_model, status, model_us,
                overhead_us, bytes_in, bytes_out, model_status,
            )
        )  # fmt: skip

    def concurrent_requests(self, endpoint: str, variant: str, in_flight: int) -> None:
        self._append((_CONCURRENT, self._clock(), endpoint, variant, in_flight))

    def model_cache(
        self, endpoint: str, variant: str, target_model: str, hit: bool, wait_us: int | None
    ) -> None:
        self._append((_CACHE, self._clock(), endpoint, variant, target_model, hit, wait_us))

    def model_loaded(
        self,
        endpoint: str,
        variant: str,
        target_model: str,
        download_us: int | None,
        load_us: int,
        loaded_count: int,
    ) -> None:
        self._append(
            (_LOADED, self._clock(), endpoint, variant, target_model, download_us, load_us,
             loaded_count)
        )  # fmt: skip

    def model_unloaded(
        self, endpoint: str, variant: str, target_model: str, unload_us: int, loaded_count: int
    ) -> None:
        self._append(
            (_UNLOADED, self._clock(), endpoint, variant, target_model, unload_us, loaded_count)
        )

    def model_setup(self, endpoint: str, variant: str, setup_us: int) -> None:
        self._append((_SETUP, self._clock(), endpoint, variant, setup_us))

    def instance_count(self, endpoint: str, variant: str, count: int) -> None:
        self._append((_COUNT, self._clock(), endpoint, variant, count))

    def instance_sample(
        self, endpoint: str, variant: str, cpu: float, memory: float, disk: float
    ) -> None:
        self._append((_SAMPLE, self._clock(), endpoint, variant, cpu, memory, disk))

    def backlog(
        self, endpoint: str, size: int, per_instance: float, oldest_s: float, without_capacity: bool
    ) -> None:
        self._append(
            (_BACKLOG, self._clock(), endpoint, size, per_instance, oldest_s, without_capacity)
        )

    # ---- the flusher's side ---------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._events)

    def drain(self) -> Rollup:
        """Every event recorded so far, rolled up into datapoints (and forgotten).

        Values are gathered per datapoint first and summarised once per datapoint (``sum``,
        ``min``, ``max`` and the histogram keys once per distinct value, in C where it can be),
        so the flusher holds the GIL for a few microseconds per request, not tens.
        """
        gathered: dict[Key, list[float]] = {}
        popleft = self._events.popleft
        for _ in range(len(self._events)):
            event = popleft()
            t = event[1]
            for metric, dimensions, value in self._values(event):
                res = metric.resolution
                key = (
                    metric.namespace,
                    metric.name,
                    dimensions,
                    metric.unit,
                    res,
                    int(t // res * res),
                )
                values = gathered.get(key)
                if values is None:
                    gathered[key] = [value]
                else:
                    values.append(value)
        out: Rollup = {}
        for key, values in gathered.items():
            stats = out[key] = Stats()
            stats.add_values(values)
        if len(self._dims) > MAX_DIMENSION_SETS:
            self._dims.clear()
        return out

    def _dims_of(self, endpoint: str, variant: str | None, model: str | None = None) -> Dims:
        """The (cached) dimensions of an endpoint, a variant or a variant's model."""
        key = (endpoint, variant, model)
        found = self._dims.get(key)
        if found is None:
            values = {"EndpointName": endpoint}
            if variant is not None:
                values["VariantName"] = variant
            if model is not None:
                values["TargetModel"] = model
            found = self._dims[key] = dims(**values)
        return found

    def _values(self, event: tuple[Any, ...]) -> Iterable[tuple[Metric, Dims, float]]:
        """The (metric, dimensions, value) samples one event stands for."""
        kind = event[0]
        if kind == _BACKLOG:
            _, _, endpoint, size, per_instance, oldest, without = event
            d = self._dims_of(endpoint, None)
            return [
                (n.BACKLOG, d, size),
                (n.BACKLOG_PER_INSTANCE, d, per_instance),
                (n.OLDEST_AGE, d, oldest),
                (n.WITHOUT_CAPACITY, d, 1.0 if without else 0.0),
            ]
        endpoint, variant = event[2], event[3]
        d = self._dims_of(endpoint, variant)
        if kind == _INVOCATION:
            return self._invocation(d, event)
        if kind == _CONCURRENT:
            return [(n.CONCURRENT, d, event[4])]
        if kind == _COUNT:
            self._instances[(endpoint, variant)] = max(int(event[4]), 1)
            return []
        if kind == _SETUP:
            return [(n.SETUP_TIME, d, event[4])]
        if kind == _SAMPLE:
            return [(n.CPU, d, event[4]), (n.MEMORY, d, event[5]), (n.DISK, d, event[6])]
        model = event[4]
        if kind == _CACHE:
            hit, wait = event[5], event[6]
            out = [(n.CACHE_HIT, 1.0 if hit else 0.0)]
            if wait is not None:
                out.append((n.LOADING_WAIT, wait))
        elif kind == _LOADED:
            download, load, count = event[5], event[6], event[7]
            out = [(n.LOADING, load), (n.LOADED_COUNT, count)]
            if download is not None:
                out.append((n.DOWNLOADING, download))
        else:  # _UNLOADED
            out = [(n.UNLOADING, event[5]), (n.LOADED_COUNT, event[6])]
        return self._with_model(d, (endpoint, variant, model), out)

    def _invocation(self, d: Dims, event: tuple[Any, ...]) -> list[tuple[Metric, Dims, float]]:
        _, _, endpoint, variant, model, status, model_us, overhead_us, size_in, size_out, code = (
            event
        )
        four = five = 0.0
        if status == "4xx":
            four = 1.0
        elif status == "5xx":
            five = 1.0
        elif status == "model-error":  # classed by the container's status; none (timeout): 5xx
            four, five = (1.0, 0.0) if code is not None and 400 <= code < 500 else (0.0, 1.0)
        values: list[tuple[Metric, float]] = [
            (n.INVOCATIONS, 1.0),
            (n.ERRORS_4XX, four),
            (n.ERRORS_5XX, five),
            (n.MODEL_ERRORS, 1.0 if status == "model-error" else 0.0),
        ]
        if model_us is not None:
            values.append((n.MODEL_LATENCY, model_us))
        if overhead_us is not None:
            values.append((n.OVERHEAD_LATENCY, overhead_us))
        out = self._with_model(d, (endpoint, variant, model), values)
        out.append((n.PER_INSTANCE, d, 1.0 / self._instances.get((endpoint, variant), 1)))
        out.append((n.REQUEST_BYTES, d, size_in))
        out.append((n.RESPONSE_BYTES, d, size_out))
        return out

    def _with_model(
        self, d: Dims, where: tuple[str, str, str | None], values: list[tuple[Metric, float]]
    ) -> list[tuple[Metric, Dims, float]]:
        """The samples under the variant's dimensions, and again under the model's (if any)."""
        out = [(metric, d, value) for metric, value in values]
        if where[2] is None:
            return out
        with_model = self._dims_of(*where)
        out += [
            (metric, with_model, value) for metric, value in values if metric.name in n.PER_MODEL
        ]
        return out
