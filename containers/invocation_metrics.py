"""The container's own clock on each invocation: per model on ``GET /metrics``, per request in
a ``Server-Timing`` header.

The gateway times a request from outside (the HTTP hop included); the usage ledger charges a
model what the container itself spent on it, so the container says: ``Server-Timing:
model;dur=<ms>`` on every answer it makes to ``/invocations`` (a model error too), and the
totals per model here let anyone check the ledger against the container's own count.
Observed on the event loop only: plain counters, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

#: The response header the gateway reads (W3C Server-Timing; ``dur`` in milliseconds).
HEADER = "server-timing"


def server_timing(seconds: float) -> str:
    return f"model;dur={seconds * 1000:.3f}"


class InvocationTimes(Collector):
    """Invocations answered and the seconds the container spent on them, per model. A model's
    totals outlive its unload (counters never go back), so they add up to every answer sent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._models: dict[str, list[float]] = {}
        registry.register(self)

    def observe(self, model: str, seconds: float) -> str:
        """Count one answer; its ``Server-Timing`` value."""
        found = self._models.get(model)
        if found is None:
            self._models[model] = [1.0, seconds]
        else:
            found[0] += 1
            found[1] += seconds
        return server_timing(seconds)

    def collect(self) -> Iterator[Metric]:
        count = CounterMetricFamily(
            "tandem_container_invocations",
            "Invocations the container answered (a model error too), per model",
            labels=("model",),
        )
        seconds = CounterMetricFamily(
            "tandem_container_invocation_seconds",
            "Seconds the container spent on them, from its request to its answer, per model",
            labels=("model",),
        )
        for model, (n, total) in list(self._models.items()):
            count.add_metric([model], n)
            seconds.add_metric([model], total)
        yield count
        yield seconds
