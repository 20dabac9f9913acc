"""Adaptive batching's series, per model, for the container's ``GET /metrics``.

Observed on the event loop for every request of a batch, so they are plain counters read at
scrape time, not ``prometheus_client`` histograms (whose lock and bucket loop cost a few µs each).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
WAIT_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


class _Histogram:
    """A histogram observed on the event loop only: no lock, one bisect (about 0.3 µs)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @staticmethod
    def family(name: str, text: str, models: Iterable[tuple[str, _Histogram]]) -> Metric:
        out = HistogramMetricFamily(name, text, labels=("model",))
        for model, histogram in models:
            running, buckets = 0, []
            for bound, count in zip((*histogram.bounds, math.inf), histogram.counts, strict=True):
                running += count
                buckets.append((floatToGoString(bound), running))
            out.add_metric([model], buckets, histogram.total)
        return out


class BatchMetrics(Collector):
    """Per-model batch sizes, waits and queue lengths, for the container's ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._sizes: dict[str, _Histogram] = {}
        self._waits: dict[str, _Histogram] = {}
        self._queues: dict[str, Callable[[], int]] = {}
        self.registry.register(self)

    def bind(self, model: str, queued: Callable[[], int]) -> tuple[_Histogram, _Histogram]:
        """The size and wait histograms of ``model`` (kept when it is bound again)."""
        self._queues[model] = queued
        size = self._sizes.setdefault(model, _Histogram(SIZE_BUCKETS))
        wait = self._waits.setdefault(model, _Histogram(WAIT_BUCKETS))
        return size, wait

    def forget(self, model: str) -> None:
        for series in (self._sizes, self._waits, self._queues):
            series.pop(model, None)

    def collect(self) -> Iterator[Metric]:
        yield _Histogram.family(
            "tandem_container_batch_size",
            "Requests per model call when adaptive batching is on (1: a request alone)",
            self._sizes.items(),
        )
        yield _Histogram.family(
            "tandem_container_batch_wait_seconds",
            "Time a request waited in its model's queue before its batch started",
            self._waits.items(),
        )
        queued = GaugeMetricFamily(
            "tandem_container_batch_queued",
            "Requests waiting in their model's queue for the next batch",
            labels=("model",),
        )
        for model, length in self._queues.items():
            queued.add_metric([model], length())
        yield queued
