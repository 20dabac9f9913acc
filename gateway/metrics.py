"""Prometheus metrics named after SageMaker's CloudWatch ones, in a registry owned by one app.

Label children are bound once per endpoint and container at start, so recording a request is a few
additions, not a label lookup. Latencies are in seconds (Prometheus' base unit; CloudWatch uses µs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from gateway.calls import Call, status_class
from gateway.container_metrics import ContainerBatchRelay
from gateway.errors import ApiError, ModelError
from gateway.live import ContainerRuntime, Instance

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
CONTENT_TYPE = CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from gateway.cloudwatch import MetricRecorder


class EndpointMetrics:
    """The bound children of one endpoint's series."""

    def __init__(self, metrics: GatewayMetrics, endpoint: Instance) -> None:
        labels = (endpoint.name, endpoint.variant)
        self.invocations = metrics.invocations.labels(*labels)
        self.errors_4xx = metrics.errors_4xx.labels(*labels)
        self.errors_5xx = metrics.errors_5xx.labels(*labels)
        self.model_errors = metrics.model_errors.labels(*labels)
        self.model_latency = metrics.model_latency.labels(*labels)
        self.overhead_latency = metrics.overhead_latency.labels(*labels)
        self.container_latency = {
            c.hostname: metrics.container_latency.labels(*labels, c.hostname)
            for c in endpoint.containers
        }

    def record(
        self, total: float, timings: Sequence[tuple[str, float]], error: ApiError | None = None
    ) -> None:
        """One finished request: ``total`` seconds in the gateway, ``timings`` per answered step."""
        self.invocations.inc()
        model = 0.0
        for hostname, seconds in timings:
            model += seconds
            self.container_latency[hostname].observe(seconds)
        if error is None:
            self.model_latency.observe(model)
            self.overhead_latency.observe(max(total - model, 0.0))
            return
        if isinstance(error, ModelError):
            self.model_errors.inc()
        # As CloudWatch counts them: a model error is classed by the container's own status.
        if status_class(error) == "5xx":
            self.errors_5xx.inc()
        else:
            self.errors_4xx.inc()


class GatewayMetrics:
    """Every series of one gateway app; ``render()`` is what ``GET /metrics`` answers."""

    def __init__(
        self,
        endpoints: Iterable[Instance],
        models_of: Callable[[ContainerRuntime], ModelState | None] = lambda _c: None,
    ) -> None:
        self.registry = CollectorRegistry()
        labels = ("endpoint", "variant")
        reg = self.registry
        self.invocations = Counter(
            "tandem_invocations", "Invocations: requests sent to the endpoint", labels, registry=reg
        )
        self.errors_4xx = Counter(
            "tandem_invocation_4xx_errors",
            "Invocation4XXErrors: requests answered with a 4xx (model errors by the container's)",
            labels,
            registry=reg,
        )
        self.errors_5xx = Counter(
            "tandem_invocation_5xx_errors",
            "Invocation5XXErrors: requests answered with a 5xx (model errors by the container's)",
            labels,
            registry=reg,
        )
        self.model_errors = Counter(
            "tandem_invocation_model_errors",
            "InvocationModelErrors: requests where a container did not answer 2xx in time",
            labels,
            registry=reg,
        )
        self.model_latency = Histogram(
            "tandem_model_latency_seconds",
            "ModelLatency: time spent in containers (sum over the steps of a Serial chain)",
            labels,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.overhead_latency = Histogram(
            "tandem_overhead_latency_seconds",
            "OverheadLatency: time in the gateway minus ModelLatency",
            labels,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.container_latency = Histogram(
            "tandem_container_latency_seconds",
            "ContainerLatency: time one container took to answer, as the gateway saw it",
            (*labels, "container"),
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.shadow_dropped = Counter(
            "tandem_shadow_dropped",
            "Copies of requests not sent to a shadow variant: too many copies already in flight",
            labels,
            registry=reg,
        )
        self.registry.register(_ContainerStateCollector(endpoints))
        #: The containers' batching series; ``await refresh()`` before ``render()``.
        self.containers = ContainerBatchRelay(endpoints)
        self.registry.register(self.containers)
        self._endpoints: dict[Instance, EndpointMetrics] = {}
        self._models = _ModelFamilies(reg)
        #: Where the model managers' events also go (the CloudWatch metric store, and through
        #: it the usage ledger); set before the managers are made.
        self.cloudwatch: MetricRecorder | None = None
        self.registry.register(_ModelStateCollector(endpoints, models_of))

    def admitted(self, call: Call) -> None:
        """Nothing: the in-flight gauges read the instances when scraped."""

    def finished(self, call: Call) -> None:
        """The ``Recorder`` of the invocation core: a finished invocation into its series."""
        instance = call.instance
        if instance is not None:
            bound = self._endpoints.get(instance) or self.endpoint(instance)
            bound.record(call.total, call.timings, call.error)

    def endpoint(self, endpoint: Instance) -> EndpointMetrics:
        """The bound series of ``endpoint`` (made on first use: endpoints come and go)."""
        bound = self._endpoints.get(endpoint)
        if bound is None:
            bound = self._endpoints[endpoint] = EndpointMetrics(self, endpoint)
        return bound

    def forget(self, endpoint: Instance) -> None:
        """``endpoint`` was replaced or deleted: drop its bound children (its series stay)."""
        self._endpoints.pop(endpoint, None)

    def models(self, endpoint: Instance, container: ContainerRuntime) -> ModelMetrics:
        """The bound series of one MultiModel container (and ``cloudwatch``, where set)."""
        labels = (endpoint.name, endpoint.variant, container.hostname)
        return ModelMetrics(self._models, labels, self.cloudwatch)

    def per_model(self, sample: Callable[[], Iterable[TopModelSample]]) -> None:
        """Add the bounded per-model series: ``sample()`` gives the top K models' figures over
        the last window and one ``other`` per variant (``gateway.usage.topk``)."""
        self.registry.register(_TopModelCollector(sample))

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: (endpoint, variant, model or ``other``, invocations, model seconds) over the window.
TopModelSample = tuple[str, str, str, float, float]


class _TopModelCollector(Collector):
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


class _RuntimeCollector(Collector):
    """Series read from the runtime state at scrape time, one sample per container."""

    def __init__(self, endpoints: Iterable[Instance]) -> None:
        #: Iterated at each scrape: a list, or the live ``EndpointTable``.
        self._endpoints = endpoints

    def _containers(self) -> Iterator[tuple[list[str], ContainerRuntime]]:
        """Every container with its label values (endpoint, variant, container)."""
        for endpoint in self._endpoints:
            for c in endpoint.containers:
                yield [endpoint.name, endpoint.variant, c.hostname], c


class _ContainerStateCollector(_RuntimeCollector):
    """Container health and restarts."""

    def collect(self) -> Iterator[Metric]:
        labels = ["endpoint", "variant", "container"]
        up = GaugeMetricFamily(
            "tandem_container_up", "1 when the container is InService, else 0", labels=labels
        )
        restarts = CounterMetricFamily(
            "tandem_container_restarts",
            "Times the supervisor restarted the container",
            labels=labels,
        )
        # Instances of one variant share their labels: up is 1 only when every copy is.
        seen: dict[tuple[str, ...], list[float]] = {}
        for values, c in self._containers():
            sample = seen.setdefault(tuple(values), [1.0, 0.0])
            sample[0] = min(sample[0], 1.0 if c.healthy else 0.0)
            sample[1] += c.restarts
        for key, (healthy, restarted) in seen.items():
            up.add_metric(list(key), healthy)
            restarts.add_metric(list(key), restarted)
        yield up
        yield restarts


class _ModelFamilies:
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
        families: _ModelFamilies,
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


class _ModelStateCollector(_RuntimeCollector):
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
