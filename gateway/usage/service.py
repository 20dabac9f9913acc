"""The ledger as the gateway runs it: a second reader of the metric store's drained events.

``UsageService`` taps the metric recorder (``Recorder.tap``): each flush of the metric store
(every ``TANDEM_METRIC_FLUSH_INTERVAL`` seconds, and before every read) hands it the same raw
events, which it folds into hourly rows in memory, written in one transaction every
``WRITE_EVERY`` seconds, before every read and at a stop. So the hot path pays nothing more, and
the current hour is readable at once (a read flushes and writes first); a SIGKILL loses at most
the last ``WRITE_EVERY`` seconds, as the metric store loses its last flush interval.
The open integrals (a model's resident memory, a variant's instances) are written every
``ACCRUE_EVERY`` seconds and before every read, not at every flush: with 1,000 models resident
that would be 1,000 rows a flush. Rows a failed write could not store are kept for the next one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway.cloudwatch.service import MetricService
from gateway.settings import GatewaySettings
from gateway.usage.ledger import HOUR, Ledger, Rows, merge, split_events
from gateway.usage.report import parse_prices, summarise
from gateway.usage.store import UsageStore
from gateway.usage.topk import Sample, TopModels

log = logging.getLogger("tandem.usage")

#: Seconds between two writes of the open integrals (besides those before a read).
ACCRUE_EVERY = 60.0
#: Seconds between two writes of the folded rows, to the nearest flush (besides those before a
#: read or a stop): a one-second flush writes every tenth.
WRITE_EVERY = 10.0


class UsageService:
    def __init__(
        self,
        metrics: MetricService,
        *,
        retention: float,
        prices: dict[str, float] | None = None,
        instance_type_of: Callable[[str, str], str | None] = lambda _e, _v: None,
        top_k: int = 50,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.retention = retention
        self.prices = prices or {}
        self.instance_type_of = instance_type_of
        self.clock = clock
        self.store = UsageStore(metrics.store.path)
        self.ledger = Ledger()
        self.top = TopModels(top_k, window)
        self._unwritten: Rows = {}
        self._lock = threading.Lock()
        #: The open integrals (resident memory, instances) are written at most this often, and
        #: before every read: a row per resident model per flush would cost more than the rest.
        self.accrue_every = ACCRUE_EVERY
        self._accrued_at = -math.inf
        self._accrue_next = False
        #: The folded rows are written at most this often, and before every read: a row per
        #: model per second would cost the flusher (and the GIL) more than folding does.
        self.write_every = WRITE_EVERY
        #: To the nearest flush: with the default 10 s flush interval, every flush writes.
        self._half_flush = metrics.flush_interval / 2
        self._written_at = -math.inf
        self._write_next = False
        #: The models with CloudWatch ``TargetModel`` series: the top K, as of the last flush.
        self._top: frozenset[tuple[str, str, str]] = frozenset()
        metrics.recorder.tap(self.consume)
        metrics.recorder.per_model(self.is_top)

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        metrics: MetricService,
        clock: Callable[[], float] = time.time,
    ) -> UsageService:
        return cls(
            metrics,
            retention=settings.usage_retention_days * 86400,
            prices=parse_prices(settings.usage_prices),
            top_k=settings.usage_top_models,
            window=settings.usage_top_window,
            clock=clock,
        )

    def consume(self, events: list[tuple[Any, ...]]) -> None:
        """Fold one drained batch (the metric flusher's thread); write what was folded every
        ``write_every`` seconds, and before a read."""
        with self._lock:
            now = self.clock()
            accrue = self._accrue_next or now - self._accrued_at >= self.accrue_every
            if accrue:
                self._accrued_at, self._accrue_next = now, False
            due = now - self._written_at >= self.write_every - self._half_flush
            write = accrue or self._write_next or due
            if write:
                self._written_at, self._write_next = now, False
            try:
                split = split_events(events)  # grouped once, for both
                rows = self.ledger.fold(events, now, split, accrue=accrue)
                self.top.add(events, split)
                self._top = self.top.top(now)
            except Exception:  # never at the cost of the metric store's own flush
                log.exception("usage: %d events could not be folded", len(events))
                return
            merge(self._unwritten, rows)
            if not write or not self._unwritten:
                return
            rows, self._unwritten = self._unwritten, {}
            try:
                self.store.write(rows, prune_before=now - self.retention)
            except Exception:  # a busy or full disk must not lose the metric store's flush
                log.exception("usage write failed; its rows are kept for the next one")
                self._unwritten = rows

    def is_top(self, endpoint: str, variant: str, model: str) -> bool:
        """Whether the model is among the top K by invocations over the window (the rollup
        asks, right after ``consume``, in the same thread)."""
        return (endpoint, variant, model) in self._top

    def price(self, endpoint: str, variant: str) -> float | None:
        """The variant's price per instance-hour: its instance type's, else ``*``'s, else none."""
        kind = self.instance_type_of(endpoint, variant)
        if kind is not None and kind in self.prices:
            return self.prices[kind]
        return self.prices.get("*")

    def report(
        self, since: float, until: float, by: str, top: int | None = None
    ) -> list[dict[str, Any]]:
        """The groups of ``[since, until)`` (whole hours), what was recorded until now included."""
        self._accrue_next = self._write_next = True
        self.metrics.flush()
        return summarise(self.store.read(since, until), by, price=self.price, top=top)

    def top_models(self) -> list[Sample]:
        """The bounded per-model series' samples (``gateway.metrics``)."""
        return self.top.sample(self.clock())

    def close(self) -> None:
        """The open integrals written up to now (after the metric store's last flush), then
        the table closed."""
        self._accrue_next = self._write_next = True
        self.consume([])
        self.store.close()


__all__ = ["HOUR", "UsageService"]
