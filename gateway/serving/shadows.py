"""Shadow variants: a copy of a share of the production requests, sent after the answer.

The copy never delays the answer: the invocation core (``gateway.serving.invocation``) only
spawns a copy once its response is sent, and when too many copies are in flight the new one is
dropped and counted instead of queued. A shadow's latency and errors land in the same series as
any variant's, under its own name, since each copy is an ordinary invocation of the core.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from typing import Any

from gateway.live import LiveEndpoint, Variant
from gateway.metrics import GatewayMetrics

#: Copies in flight to all shadows together before new ones are dropped.
DEFAULT_LIMIT = 256


class ShadowSender:
    """Which shadows sample a request, and the copies' tasks, at most ``limit`` at once."""

    def __init__(self, metrics: GatewayMetrics, *, limit: int = DEFAULT_LIMIT) -> None:
        self.metrics = metrics
        self.limit = limit
        self._pending: set[asyncio.Task[None]] = set()

    def sampled(self, live: LiveEndpoint) -> Iterator[Variant]:
        """Each shadow that samples this request and has room for a copy (else counted)."""
        for shadow in live.shadows:
            share = shadow.sampling if shadow.sampling is not None else 100.0
            if share < 100.0 and random.random() * 100.0 >= share:
                continue
            if len(self._pending) >= self.limit:
                self.metrics.shadow_dropped.labels(live.name, shadow.name).inc()
                continue
            yield shadow

    def spawn(self, copy: Coroutine[Any, Any, None]) -> None:
        """Run ``copy`` in the background; never waits."""
        task = asyncio.get_running_loop().create_task(copy)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def aclose(self) -> None:
        """Shutdown: copies still in flight are given up (they answer nobody)."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
