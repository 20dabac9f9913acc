"""Shadow variants: a copy of a share of the production requests, sent after the answer.

The copy never delays the answer: the hot path only starts a task once its response is sent,
and when too many copies are in flight the new one is dropped and counted instead of queued.
A shadow's latency and errors land in the same series as any variant's, under its own name.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from gateway.errors import ApiError
from gateway.live import Instance, LiveEndpoint
from gateway.metrics import GatewayMetrics
from gateway.serving.dispatch import Dispatcher, InvocationRequest

log = logging.getLogger("tandem.gateway")

#: Copies in flight to all shadows together before new ones are dropped.
DEFAULT_LIMIT = 256


class ShadowSender:
    def __init__(
        self, dispatcher: Dispatcher, metrics: GatewayMetrics, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.limit = limit
        self._pending: set[asyncio.Task[None]] = set()

    def offer(self, live: LiveEndpoint, invocation: InvocationRequest) -> None:
        """Copy ``invocation`` to each shadow that samples it; never waits."""
        for shadow in live.shadows:
            share = shadow.sampling if shadow.sampling is not None else 100.0
            if share < 100.0 and random.random() * 100.0 >= share:
                continue
            if len(self._pending) >= self.limit:
                self.metrics.shadow_dropped.labels(live.name, shadow.name).inc()
                continue
            task = asyncio.get_running_loop().create_task(self._send(shadow.instance(), invocation))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send(self, instance: Instance, invocation: InvocationRequest) -> None:
        started = time.perf_counter()
        timings: list[tuple[str, float]] = []
        instance.inflight += 1
        try:
            await self.dispatcher.invoke(instance, invocation, timings)
        except ApiError as exc:
            self.metrics.endpoint(instance).record(time.perf_counter() - started, timings, exc)
            return
        except Exception:  # a shadow's failure is counted, never a production request's
            log.exception("%s/%s: shadow copy failed", instance.name, instance.variant)
            return
        finally:
            instance.inflight -= 1
        self.metrics.endpoint(instance).record(time.perf_counter() - started, timings)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def aclose(self) -> None:
        """Shutdown: copies still in flight are given up (they answer nobody)."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
