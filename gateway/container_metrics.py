"""Container series relayed into the gateway's ``GET /metrics``: adaptive batching's, per model.

The batch sizes and waits live in each container process (``GET /metrics`` there). One scrape of
the gateway fetches them from every healthy container whose spec turns batching on, at most once
a second however often it is scraped, and shows them with the gateway's endpoint, variant and
container labels in front of the container's own ``model`` label. A container that does not answer
within the timeout keeps its last samples until it does, so a slow container never slows a scrape
by more than the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gateway.live import ContainerRuntime, Instance

log = logging.getLogger(__name__)

PREFIX = "tandem_container_batch_"
TIMEOUT_S = 1.0
MIN_INTERVAL_S = 1.0
LABELS = ("endpoint", "variant", "container")


class ContainerBatchRelay(Collector):
    """The batching families of every container, fetched by :meth:`refresh`."""

    def __init__(self, endpoints: Iterable[Instance]) -> None:
        self._endpoints = endpoints
        self._families: dict[tuple[str, str, str], list[Metric]] = {}
        self._last = 0.0

    def _targets(self) -> Iterator[tuple[tuple[str, str, str], ContainerRuntime]]:
        for endpoint in self._endpoints:
            for c in endpoint.containers:
                if c.spec.batching is not None and c.healthy and c.url:
                    yield (endpoint.name, endpoint.variant, c.hostname), c

    async def refresh(self) -> None:
        """Fetch the containers' series (skipped within a second of the last fetch)."""
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        targets = dict(self._targets())
        for key in [k for k in self._families if k not in targets]:
            del self._families[key]  # the container is gone
        if not targets:
            return
        import httpx  # only when a container batches: the gateway's hot path never needs it

        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            texts = await asyncio.gather(
                *(client.get(c.url + "/metrics") for c in targets.values()),
                return_exceptions=True,
            )
        for key, answer in zip(targets, texts, strict=True):
            if isinstance(answer, BaseException) or answer.status_code != 200:
                log.debug("no batching metrics from %s: %s", "/".join(key), answer)
                continue
            try:
                families = [
                    family
                    for family in text_string_to_metric_families(answer.text)
                    if family.name.startswith(PREFIX)
                ]
            except ValueError as exc:
                log.debug("unreadable metrics from %s: %s", "/".join(key), exc)
                continue
            self._families[key] = families

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for key, families in self._families.items():
            labels = dict(zip(LABELS, key, strict=True))
            for family in families:
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    out.add_sample(sample.name, {**labels, **sample.labels}, sample.value)
        yield from merged.values()
