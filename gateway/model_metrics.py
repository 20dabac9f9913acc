"""The MultiModel series (SageMaker's MME metrics) and the bounded per-model ones.

``ModelMetrics`` is what one model manager records (bound once per container, each event to
Prometheus and, where set, to CloudWatch's metric store); ``ModelStateCollector`` reads the
managers at scrape time; ``TopModelCollector`` shows only the top K models by traffic (the
usage ledger's), so the series stay bounded whatever the number of models. Registered in
``GatewayMetrics``' registry (``gateway.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.live import ContainerRuntime, Instance

if TYPE_CHECKING:
    from gateway.cloudwatch import MetricRecorder

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class RuntimeCollector(Collector):
    """Series read from the runtime state at scrape time, one sample per container."""

    def __init__(self, endpoints: Iterable[Instance]) -> None:
        #: Iterated at each scrape: a list, or the live ``EndpointTable``.
        self._endpoints = endpoints

    def _containers(self) -> Iterator[tuple[list[str], ContainerRuntime]]:
        """Every container with its label values (endpoint, variant, container)."""
        for endpoint in self._endpoints:
            for c in endpoint.containers:
                yield [endpoint.name, endpoint.variant, c.hostname], c


#: (endpoint, variant, model or ``other``, invocations, model seconds) over the window.
TopModelSample = tuple[str, str, str, float, float]


class TopModelCollector(Collector):
    """Per-model series for the top K models only, so their number stays bounded."""

    def __init__(self, sample: Callable[[], Iterable[TopModelSample]]) -> None:
        self._sample = sample

    def collect(self) -> Iterator[Metric]:
        labels = ["endpoint", "variant", "model"]
        invocations = GaugeMetricFamily(
            "tandem_model_window_invocations",
            "Invocations of a TargetModel over the last window (TANDEM_USAGE_TOP_WINDOW), for "
            "the top TANDEM_USAGE_TOP_MODELS models; the rest summed under model=other",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "tandem_model_window_model_seconds",
            "Model time (container seconds) of a TargetModel over the last window, top models",
            labels=labels,
        )
        for endpoint, variant, model, count, model_s in self._sample():
            invocations.add_metric([endpoint, variant, model], count)
            seconds.add_metric([endpoint, variant, model], model_s)
        yield invocations
        yield seconds


class ModelFamilies:
    """The multi-model series (SageMaker's MME metrics), labelled endpoint/variant/container."""

    def __init__(self, reg: CollectorRegistry) -> None:
        labels = ("endpoint", "variant", "container")

        def histogram(name: str, text: str) -> Histogram:
            return Histogram(name, text, labels, registry=reg, buckets=LATENCY_BUCKETS)

        self.wait = histogram(
            "tandem_model_loading_wait_seconds",
            "ModelLoadingWaitTime: time a request waited for its model to be downloaded and loaded",
        )
        self.download = histogram(
            "tandem_model_downloading_seconds",
            "ModelDownloadingTime: time to fetch and unpack a model from the store to disk",
        )
        self.load = histogram(
            "tandem_model_loading_seconds",
            "ModelLoadingTime: time the container took to load a model (POST /models)",
        )
        self.unload = histogram(
            "tandem_model_unloading_seconds",
            "ModelUnloadingTime: time the container took to unload a model (DELETE /models)",
        )
        self.hits = Counter(
            "tandem_model_cache_hits",
            "ModelCacheHit=1: requests whose model was already loaded",
            labels,
            registry=reg,
        )
        self.misses = Counter(
            "tandem_model_cache_misses",
            "ModelCacheHit=0: requests that had to wait for their model to load",
            labels,
            registry=reg,
        )
        self.evictions = Counter(
            "tandem_model_evictions",
            "Models unloaded from memory (memory) or deleted from the disk cache (disk)",
            (*labels, "reason"),
            registry=reg,
        )


class ModelMetrics:
    """What one model manager records; bound once, so recording is an addition. Each event
    goes to the Prometheus series and, where set, to ``cloudwatch`` (CloudWatch's names, in µs)."""

    def __init__(
        self,
        families: ModelFamilies,
        labels: tuple[str, str, str],
        cloudwatch: MetricRecorder | None = None,
    ) -> None:
        self._endpoint, self._variant = labels[0], labels[1]
        self._cloudwatch = cloudwatch
        self.wait = families.wait.labels(*labels)
        self.download = families.download.labels(*labels)
        self.load = families.load.labels(*labels)
        self.unload = families.unload.labels(*labels)
        self.hits = families.hits.labels(*labels)
        self.misses = families.misses.labels(*labels)
        self._evictions = {
            reason: families.evictions.labels(*labels, reason)
            for reason in ("memory", "disk", "request")
        }

    def evicted(self, reason: str) -> None:
        self._evictions[reason].inc()

    def hit(self, target: str) -> None:
        """A request found ``target`` loaded (``ModelCacheHit`` 1)."""
        self.hits.inc()
        if self._cloudwatch is not None:
            self._cloudwatch.model_cache(self._endpoint, self._variant, target, True, None)

    def miss(self, target: str) -> None:
        """A request found ``target`` not loaded; ``waited`` follows once its load is done."""
        self.misses.inc()

    def waited(self, target: str, seconds: float) -> None:
        """A request that missed waited ``seconds`` (``ModelCacheHit`` 0,
        ``ModelLoadingWaitTime``)."""
        self.wait.observe(seconds)
        if self._cloudwatch is not None:
            wait_us = int(seconds * 1e6)
            self._cloudwatch.model_cache(self._endpoint, self._variant, target, False, wait_us)

    def loaded(
        self, target: str, download: float | None, load: float, count: int, size: int
    ) -> None:
        """A load finished in ``load`` seconds (after ``download`` seconds of fetching, None
        from the disk cache), adding ``size`` bytes; ``count`` models are loaded now."""
        self.load.observe(load)
        if self._cloudwatch is not None:
            fetched = None if download is None else int(download * 1e6)
            self._cloudwatch.model_loaded(
                self._endpoint, self._variant, target, fetched, int(load * 1e6), count,
                size_bytes=size,
            )  # fmt: skip

    def unloaded(self, target: str, seconds: float, count: int) -> None:
        """An unload finished in ``seconds``; ``count`` models are loaded now."""
        self.unload.observe(seconds)
        if self._cloudwatch is not None:
            self._cloudwatch.model_unloaded(
                self._endpoint, self._variant, target, int(seconds * 1e6), count
            )


class ModelState(Protocol):
    """What the metrics read of a MultiModel container's manager at scrape time."""

    @property
    def loaded_count(self) -> int: ...

    @property
    def memory_limit(self) -> int: ...

    @property
    def cache(self) -> Sized: ...

    @property
    def cache_bytes(self) -> int: ...

    def memory_used(self) -> int | None: ...


class ModelStateCollector(RuntimeCollector):
    """Loaded models, disk cache and the container's memory, read from the model managers."""

    def __init__(
        self,
        endpoints: Iterable[Instance],
        models_of: Callable[[ContainerRuntime], ModelState | None],
    ) -> None:
        super().__init__(endpoints)
        self._models_of = models_of

    def collect(self) -> Iterator[Metric]:
        labels = ["endpoint", "variant", "container"]
        loaded = GaugeMetricFamily(
            "tandem_loaded_model_count", "LoadedModelCount: models loaded in memory", labels=labels
        )
        cached = GaugeMetricFamily(
            "tandem_model_disk_cache_bytes",
            "Bytes of unpacked models in the disk cache",
            labels=labels,
        )
        cached_count = GaugeMetricFamily(
            "tandem_model_disk_cache_models", "Models in the disk cache", labels=labels
        )
        memory = GaugeMetricFamily(
            "tandem_container_memory_bytes",
            "Resident memory of the container's process tree (as the gateway measures it)",
            labels=labels,
        )
        limit = GaugeMetricFamily(
            "tandem_container_memory_limit_bytes",
            "Memory limit the gateway keeps a MultiModel container under",
            labels=labels,
        )
        for values, c in self._containers():
            manager = self._models_of(c)
            if manager is None:
                continue
            loaded.add_metric(values, float(manager.loaded_count))
            cached.add_metric(values, float(manager.cache_bytes))
            cached_count.add_metric(values, float(len(manager.cache)))
            used = manager.memory_used()
            if used is not None:
                memory.add_metric(values, float(used))
            limit.add_metric(values, float(manager.memory_limit))
        yield from (loaded, cached, cached_count, memory, limit)
