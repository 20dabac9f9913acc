"""The metric store as the gateway runs it: the recorder, its tables and the flusher between.

``MetricService.from_settings`` makes it (the state folder's database, the retention, the flush
interval); ``sample_with`` adds gauges read before each background flush; ``start()`` runs the
flusher as a task on the event loop, ``aclose()`` stops it and
flushes what is left, so a stopped gateway loses nothing it recorded. A flush (``flush()``, in a
worker thread) drains the recorder and writes one transaction, which also prunes. A read through
the API flushes first, so what was recorded is there to read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gateway.cloudwatch.recorder import Recorder, Rollup
from gateway.cloudwatch.store import MetricStore
from gateway.periodic import cancel, every
from gateway.settings import GatewaySettings

log = logging.getLogger("tandem.cloudwatch")
_FLUSH_FAILED = "metric flush failed; its datapoints are kept for the next one"

#: The state folder's database file (``gateway.state.FILENAME``, which this layer cannot import).
FILENAME = "control.db"


class MetricService:
    def __init__(
        self,
        path: Path,
        *,
        retention: float,
        flush_interval: float,
        max_points: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.retention = retention
        self.flush_interval = flush_interval
        #: What the serving side records into.
        self.recorder = Recorder(clock)
        self.store = MetricStore(path, max_points=max_points)
        self._flushing = threading.Lock()
        self._unwritten: Rollup = {}
        self._samplers: list[Callable[[Recorder], None]] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, clock: Callable[[], float] = time.time
    ) -> MetricService:
        return cls(
            settings.state_dir / FILENAME,
            retention=settings.metric_retention_hours * 3600,
            flush_interval=settings.metric_flush_interval,
            max_points=settings.metric_max_points,
            clock=clock,
        )

    def flush(self) -> None:
        """Drain the recorder into the tables and prune, in one transaction (blocking)."""
        with self._flushing:
            rollup = self.recorder.drain()
            for key, stats in self._unwritten.items():  # what a failed flush could not write
                if key in rollup:
                    rollup[key].merge(stats)
                else:
                    rollup[key] = stats
            try:
                self.store.write(rollup, prune_before=self.clock() - self.retention)
            except BaseException:
                self._unwritten = rollup
                raise
            self._unwritten = {}

    def write(self, rollup: Rollup) -> None:
        """Datapoints a client published (PutMetricData), in one transaction."""
        with self._flushing:
            self.store.write(rollup)

    def sample_with(self, sampler: Callable[[Recorder], None]) -> None:
        """Have ``sampler(recorder)`` called before each background flush, in the flusher's
        thread: gauges such as the async backlog and the instances' CPU, memory and disk."""
        self._samplers.append(sampler)

    def sample(self) -> None:
        """Run every sampler once; one that fails is logged and the others still run."""
        for sampler in list(self._samplers):
            try:
                sampler(self.recorder)
            except Exception:
                log.exception("metric sampler %r failed", sampler)

    def _sample_and_flush(self) -> None:
        self.sample()
        self.flush()

    async def start(self) -> None:
        if self._task is None:
            loop = every(self.flush_interval, self._flush_in_thread, log, _FLUSH_FAILED)
            self._task = asyncio.create_task(loop, name="cloudwatch-flusher")

    async def _flush_in_thread(self) -> None:
        await asyncio.to_thread(self._sample_and_flush)

    async def aclose(self) -> None:
        """Stop the flusher, flush what is left, close the tables."""
        task, self._task = self._task, None
        await cancel(task)
        try:
            await asyncio.to_thread(self.flush)
        finally:
            self.store.close()
