"""SageMaker's asynchronous scaling signals as Prometheus gauges, read from the queue per scrape.

``ApproximateBacklogSize`` counts requests queued or running, ``...PerInstance`` divides it by
the endpoint's instances (what an autoscaler keeps at a target) and
``ApproximateAgeOfOldestRequest`` is the seconds since the oldest of them was accepted. Every
endpoint with ``async_inference`` has a sample, 0 when idle, so a scaler sees the drop to zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.live import EndpointTable
from gateway.state import StateStore

log = logging.getLogger("tandem.async")

BACKLOG = "tandem_approximate_backlog_size"
BACKLOG_PER_INSTANCE = "tandem_approximate_backlog_size_per_instance"
OLDEST = "tandem_approximate_age_of_oldest_request"

if TYPE_CHECKING:
    from gateway.cloudwatch import MetricRecorder


class BacklogCollector(Collector):
    def __init__(self, store: StateStore, table: EndpointTable) -> None:
        self.store = store
        self.table = table

    def collect(self) -> Iterator[Metric]:
        labels = ["endpoint"]
        size = GaugeMetricFamily(
            BACKLOG, "ApproximateBacklogSize: async requests queued or running", labels=labels
        )
        per_instance = GaugeMetricFamily(
            BACKLOG_PER_INSTANCE,
            "ApproximateBacklogSizePerInstance: the backlog over the endpoint's instances",
            labels=labels,
        )
        oldest = GaugeMetricFamily(
            OLDEST,
            "ApproximateAgeOfOldestRequest: seconds since the oldest queued request arrived",
            labels=labels,
        )
        try:
            figures = list(backlog_figures(self.store, self.table))
        except Exception:  # a scrape must not fail because the database is busy or closed
            log.exception("asynchronous backlog could not be read")
            figures = []
        for name, count, instances, age in figures:
            size.add_metric([name], count)
            per_instance.add_metric([name], count / max(instances, 1))
            oldest.add_metric([name], age)
        yield size
        yield per_instance
        yield oldest


def backlog_figures(
    store: StateStore, table: EndpointTable
) -> Iterator[tuple[str, int, int, float]]:
    """(endpoint, requests queued or running, its instances, the oldest one's age in seconds)
    for every asynchronous endpoint, 0 when idle."""
    backlog = store.backlog()
    now = time.time()
    names = {e.name for e in table.live() if e.spec.async_inference is not None}
    for name in sorted(names | set(backlog)):
        entry = backlog.get(name)
        live = table.get(name)
        instances = sum(len(v.instances) for v in live.variants) if live else 0
        age = now - entry.oldest if entry and entry.oldest is not None else 0.0
        yield name, entry.size if entry else 0, instances, max(age, 0.0)


def sample_backlog(store: StateStore, table: EndpointTable, recorder: MetricRecorder) -> None:
    """The same figures for CloudWatch (``MetricService.sample_with``): ``ApproximateBacklogSize``,
    per instance, the oldest request's age, and ``HasBacklogWithoutCapacity``."""
    for name, count, instances, age in backlog_figures(store, table):
        recorder.backlog(name, count, count / max(instances, 1), age, count > 0 and instances == 0)
