"""Room in a container's memory: which models leave so that a load fits, and their unloads.

The half of ``ModelManager`` (``manager.py``) that unloads; the other half loads. Room is planned
under the manager's lock, counting the loads in flight and the unloads under way; the unloads
themselves run after the lock is let go, so a load waits for its own victims' round trips, never
for another load's. The victims of one call leave together: their ``DELETE /models/{name}``
calls go out at once, so a 10 MB model that needs ten 1 MB ones gone waits for about one unload.
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
    #: Bytes of models taken off the books whose unloads have not ended yet, and those unloads.
    _freeing: int
    _unloading: set[asyncio.Future[None]]
    _lock: asyncio.Lock

    def memory_used(self) -> int | None:
        raise NotImplementedError

    @property
    def _where(self) -> str:
        raise NotImplementedError

    async def _make_room(self, need: int, at_least: int = 0) -> list[LoadedModel]:
        """Choose the policy's victims until ``need`` more bytes fit (call with the lock held).

        They leave the books at once and their memory counts as freed (``_freeing``) while
        their unloads run: the caller starts them (``_room_made``) and waits for them after
        letting the lock go, so the next load plans its room without waiting for these round
        trips.
        """
        usage = self._usage()
        chosen: list[LoadedModel] = []
        while usage + need > self.memory_limit or len(chosen) < at_least:
            idle = {t for t, e in self._loaded.items() if not e.pinned and e.in_use == 0}
            short = max(usage + need - self.memory_limit, 1 if len(chosen) < at_least else 0)
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
            self._forget(gone)
            chosen += gone
            usage -= sum(e.memory for e in gone)
        return chosen

    async def _released_within(self, timeout: float) -> bool:
        self._released.clear()
        try:
            await asyncio.wait_for(self._released.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _usage(self) -> int:
        """Memory in use, less what unloads under way are freeing."""
        measured = self.memory_used()
        if measured is None:
            return sum(e.memory for e in self._loaded.values())
        return max(measured - self._freeing, 0)

    def _forget(self, entries: list[LoadedModel]) -> None:
        """Take ``entries`` off the books; their memory is being freed until they unload."""
        for entry in entries:
            if self._loaded.get(entry.target) is entry:
                del self._loaded[entry.target]
            self.policy.on_unload(entry.target)
            self._freeing += entry.memory
        self._changes += 1

    async def _unload(self, entries: list[LoadedModel], *, reason: str) -> None:
        """Unload ``entries`` side by side, now."""
        self._forget(entries)
        await self._start_unloads(entries, reason)

    def _start_unloads(self, entries: list[LoadedModel], reason: str) -> asyncio.Future[None]:
        """Send the unloads of entries ``_forget`` took off the books, side by side, as a task
        of their own (a load that stops waiting does not stop them); it ends when they have."""
        task = asyncio.ensure_future(self._send_unloads(entries, reason))
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)
        return task

    def _room_made(self, victims: list[LoadedModel], need: int) -> list[asyncio.Future[None]]:
        """What a load of ``need`` bytes must wait for before it is sent (call with the lock
        held): its victims' unloads, and those under way when its room counts on them (the
        container refuses a load that its resident memory cannot take yet)."""
        others = list(self._unloading)
        resident = self._usage() + self._freeing
        waits = [self._start_unloads(victims, "memory")] if victims else []
        if others and resident + need > self.memory_limit:
            waits += others
        return waits

    async def _send_unloads(self, entries: list[LoadedModel], reason: str) -> None:
        try:
            await asyncio.gather(*(self._unload_one(entry, reason) for entry in entries))
        finally:
            self._freeing = max(self._freeing - sum(e.memory for e in entries), 0)
            self._changes += 1

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
