"""Room in a container's memory: which models leave so that a load fits, and their unloads.

The half of ``ModelManager`` (``manager.py``) that unloads; the other half loads. Room is made
under the manager's lock, counting the loads in flight. The victims of one call leave together:
their ``DELETE /models/{name}`` calls go out at once, not one round trip after another, so a
10 MB model that needs ten 1 MB ones gone waits for about one unload, not ten.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.metrics import ModelMetrics
from gateway.multimodel.describe import LoadedModel
from gateway.multimodel.eviction import EvictionPolicy
from gateway.multimodel.model_api import ModelApi

log = logging.getLogger("tandem.models")


class Evictions:
    """What ``ModelManager`` needs to make room; its state is the manager's."""

    memory_limit: int
    metrics: ModelMetrics
    policy: EvictionPolicy
    _api: ModelApi
    _loaded: dict[str, LoadedModel]
    _load_timeout: float
    _released: asyncio.Event
    #: Loads started and unloads done (a load that saw neither change reads what it added
    #: from the container's memory).
    _changes: int
    _lock: asyncio.Lock

    def memory_used(self) -> int | None:
        raise NotImplementedError

    @property
    def _where(self) -> str:
        raise NotImplementedError

    async def _make_room(self, need: int, at_least: int = 0) -> int:
        """Unload the policy's victims until ``need`` more bytes fit; how many went. Call with
        the lock held."""
        usage = self._usage()
        evicted = 0
        while usage + need > self.memory_limit or evicted < at_least:
            idle = {t for t, e in self._loaded.items() if not e.pinned and e.in_use == 0}
            short = max(usage + need - self.memory_limit, 1 if evicted < at_least else 0)
            # A model just loaded goes last: the requests that waited for it resume soon.
            settled = {t for t in idle if self._loaded[t].uses}
            victims = self.policy.victims(short, settled) or self.policy.victims(short, idle)
            if not victims:
                # Models in use free up within a request's time: wait rather than fail.
                busy = any(not e.pinned for e in self._loaded.values())
                if not busy or not await self._released_within(self._load_timeout):
                    break
                usage = self._usage()
                continue
            gone = [self._loaded[t] for t in victims]
            await self._unload(gone, reason="memory")
            evicted += len(gone)
            usage -= sum(e.memory for e in gone)
            measured = self.memory_used()
            if measured is not None:
                usage = min(usage, measured)
        return evicted

    async def _released_within(self, timeout: float) -> bool:
        self._released.clear()
        try:
            await asyncio.wait_for(self._released.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _usage(self) -> int:
        measured = self.memory_used()
        return measured if measured is not None else sum(e.memory for e in self._loaded.values())

    async def _unload(self, entries: list[LoadedModel], *, reason: str) -> None:
        """Unload ``entries`` side by side (call with the lock held: none is taken meanwhile)."""
        for entry in entries:
            if self._loaded.get(entry.target) is entry:
                del self._loaded[entry.target]
            self.policy.on_unload(entry.target)
        self._changes += 1
        await asyncio.gather(*(self._unload_one(entry, reason) for entry in entries))

    async def _unload_one(self, entry: LoadedModel, reason: str) -> None:
        started = time.perf_counter()
        await self._api.unload(entry.name)
        self._unloaded(entry, reason, time.perf_counter() - started)

    def _unloaded(self, entry: LoadedModel, reason: str, seconds: float) -> None:
        """An unload finished in ``seconds`` (ModelUnloadingTime)."""
        self.metrics.unloaded(entry.target, seconds, len(self._loaded))
        self.metrics.evicted(reason)
        log.info("%s: unloaded %s (%s)", self._where, entry.target, reason)

    async def _unload_if_idle(self, entry: LoadedModel) -> None:
        async with self._lock:
            if entry.in_use == 0 and self._loaded.get(entry.target) is entry:
                await self._unload([entry], reason="request")
