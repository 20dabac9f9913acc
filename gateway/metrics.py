"""Prometheus metrics named after SageMaker's CloudWatch ones, in a registry owned by one app.

Label children are bound once per endpoint and container at start, so recording a request is a few
additions, not a label lookup. Latencies are in seconds (Prometheus' base unit; CloudWatch uses µs).
The MultiModel series and the bounded per-model ones are ``gateway.model_metrics``' (re-exported
here: the model managers record through ``ModelMetrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.calls import Call, status_class
from gateway.container_metrics import ContainerBatchRelay
from gateway.errors import ApiError, ModelError
from gateway.live import ContainerRuntime, Instance
from gateway.model_metrics import (
    LATENCY_BUCKETS,
    ModelFamilies,
    ModelMetrics,
    ModelState,
    ModelStateCollector,
    RuntimeCollector,
    TopModelCollector,
    TopModelSample,
)

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
        self._models = ModelFamilies(reg)
        #: Where the model managers' events also go (the CloudWatch metric store, and through
        #: it the usage ledger); set before the managers are made.
        self.cloudwatch: MetricRecorder | None = None
        self.registry.register(ModelStateCollector(endpoints, models_of))

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
        self.registry.register(TopModelCollector(sample))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ContainerStateCollector(RuntimeCollector):
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


__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "EndpointMetrics",
    "GatewayMetrics",
    "ModelMetrics",
    "ModelState",
    "TopModelSample",
]
