"""One MultiModel container's models: single-flight loads, memory-aware eviction, pinning.

The container only loads and unloads when told (docs/contract.md); this is the platform side
that decides. A load is one task per model that every request for it awaits: concurrent first
requests share it, and a request that gives up waiting (``ModelNotReady``) leaves it running.
A request for a loaded model takes no lock and awaits nothing here: loads run beside it, up to
``max_loads`` at once (``TANDEM_MODEL_LOADS``). Room is made for each load under the lock,
counting the loads in flight (``room.py``, which also unloads); which models leave is the
eviction policy's choice (``eviction.py``). The memory a load added is what the container's
router measured (``memoryBytes``), else the difference of its resident memory when the load ran
alone, else the model's size; never less than its size on disk. The calls themselves
(``POST /models``, ``DELETE /models/{name}``) are in ``model_api.py``. Where a load finishes
(``_loaded_one``), an unload finishes (``_unloaded``, in ``room.py``) and a request stops
waiting (``_waited``) are one method each, for the recorders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from gateway.errors import ApiError, ModelNotReady
from gateway.live import ContainerRuntime
from gateway.metrics import ModelMetrics
from gateway.multimodel.cache import CacheEntry, DiskCache, purge
from gateway.multimodel.describe import LoadedModel, describe, load_cost, measured
from gateway.multimodel.errors import load_failed, no_room, store_failed, unreachable
from gateway.multimodel.eviction import EvictionPolicy, PolicyName, make_policy
from gateway.multimodel.model_api import ModelApi
from gateway.multimodel.model_store import ModelStore, StoreError
from gateway.multimodel.room import Evictions
from gateway.multimodel.targets import container_name
from gateway.upstream import Upstream
from pipelines.spec import ModelCache

log = logging.getLogger("tandem.models")


class ModelManager(Evictions):
    def __init__(
        self,
        container: ContainerRuntime,
        *,
        store: ModelStore,
        cache: DiskCache,
        upstream: Callable[[], Upstream],
        metrics: ModelMetrics,
        memory_limit: int,
        load_timeout: float = 600.0,
        eviction: PolicyName = "value",
        max_loads: int = 2,
    ) -> None:
        self.container = container
        self.store = store
        self.cache = cache
        self.metrics = metrics
        self.memory_limit = memory_limit
        self.pinned = frozenset(container.spec.preload)
        self.wait_timeout = container.spec.load_wait_timeout
        self.unload_after_use = container.spec.model_cache is ModelCache.DISABLED
        self._api = ModelApi(container, upstream, load_timeout=load_timeout)
        self._load_timeout = load_timeout
        self._loaded: dict[str, LoadedModel] = {}
        self.policy: EvictionPolicy = make_policy(eviction)
        self._loading: dict[str, asyncio.Task[LoadedModel]] = {}
        #: Memory each target's last load added, kept after eviction to plan its next load.
        self._known: dict[str, int] = {}
        #: Seconds each model's last fetch from the store took, until its load reports it.
        self._fetched: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.max_loads = max(1, max_loads)
        self._slots = asyncio.Semaphore(self.max_loads)
        #: Bytes planned for loads in flight: room made but not yet measured.
        self._reserved = 0
        #: Loads running now, and a count of loads started and unloads done (a load that saw
        #: neither change can read what it added from the container's memory).
        self._running = 0
        self._changes = 0
        self._freeing = 0
        self._unloading: set[asyncio.Future[None]] = set()
        self._released = asyncio.Event()
        self._generation = container.generation
        self._tasks: set[asyncio.Task[None]] = set()
        container.on_ready.append(self._restarted)

    # ---- what the dispatcher calls ----------------------------------------------------------

    async def acquire(self, target: str, deadline: float) -> LoadedModel:
        """``target`` loaded and marked in use; ``release`` it after the request."""
        self._sync_generation()
        entry = self._loaded.get(target)
        if entry is not None:
            self._hit(target)
            return self._use(entry)
        self._miss(target)
        started = time.perf_counter()
        try:
            while True:
                task = self._load_task(target)
                wait = min(self.wait_timeout, deadline - time.monotonic())
                try:
                    entry = await asyncio.wait_for(asyncio.shield(task), max(wait, 0.0))
                except TimeoutError:
                    raise ModelNotReady(
                        f"Model {target} is still loading in container "
                        f"{self.container.hostname}; it was not ready within {wait:.3g} s. "
                        "Try again shortly."
                    ) from None
                # Another load may have evicted it between the task's end and this line.
                if self._loaded.get(target) is entry:
                    return self._use(entry)
        finally:
            self._waited(target, time.perf_counter() - started)

    def release(self, entry: LoadedModel) -> None:
        entry.in_use -= 1
        entry.last_used = time.time()
        if entry.in_use == 0:
            self._released.set()
        if self.unload_after_use and entry.in_use == 0 and not entry.pinned:
            self._spawn(self._unload_if_idle(entry))

    def lost(self, entry: LoadedModel) -> None:
        """The container answered 404 for a model we thought loaded: forget it, load anew."""
        if self._loaded.get(entry.target) is entry:
            del self._loaded[entry.target]
            self.policy.on_unload(entry.target)
            log.warning("%s: model %s was not loaded any more", self._where, entry.target)

    # ---- start, stop, administration -------------------------------------------------------

    async def preload(self) -> None:
        """Load every pinned model; a failure is logged and retried on the first request."""
        for target in sorted(self.pinned):
            if target in self._loaded:
                continue
            try:
                await self._load_task(target)
            except ApiError as exc:
                log.error("%s: cannot preload %s: %s", self._where, target, exc.message)

    async def close(self) -> None:
        tasks: list[asyncio.Future[Any]] = [*self._tasks, *self._loading.values(), *self._unloading]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def evict(self, target: str) -> dict[str, bool]:
        """Unload ``target`` and delete it from disk (for a model replaced in the store)."""
        task = self._loading.get(target)
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        async with self._lock:
            entry = self._loaded.get(target)
            if entry is not None:
                await self._unload([entry], reason="request")
            trash = self.cache.remove(target)
        if trash is not None:
            await asyncio.to_thread(purge, [trash])
            self.metrics.evicted("request")
        return {"Unloaded": entry is not None, "Deleted": trash is not None}

    @property
    def cache_bytes(self) -> int:
        return self.cache.total

    @property
    def loaded_models(self) -> Mapping[str, LoadedModel]:
        return self._loaded

    def is_loading(self, target: str) -> bool:
        return target in self._loading

    @property
    def loaded_count(self) -> int:
        return len(self._loaded)

    def memory_used(self) -> int | None:
        """The container's resident memory (its process tree), or None where it is unknown."""
        handle = self.container.handle
        return handle.memory() if handle is not None and handle.alive else None

    def describe(self) -> dict[str, object]:
        return describe(self)

    # ---- loading -----------------------------------------------------------------------------

    def _load_task(self, target: str) -> asyncio.Task[LoadedModel]:
        task = self._loading.get(target)
        if task is None:
            task = asyncio.create_task(self._load(target), name=f"load {target}")
            self._loading[target] = task
            task.add_done_callback(lambda t: self._load_done(target, t))
        return task

    def _load_done(self, target: str, task: asyncio.Task[LoadedModel]) -> None:
        if self._loading.get(target) is task:
            del self._loading[target]
        if not task.cancelled() and task.exception() is not None:  # mark it retrieved
            log.info("%s: loading %s failed: %s", self._where, target, task.exception())

    async def _load(self, target: str) -> LoadedModel:
        cached = self.cache.get(target)
        if cached is None:
            cached = await self._download(target)
        async with self._slots:
            entry = await self._load_now(target, cached)
        await self._shrink_disk()  # models evicted from memory above may leave the disk now
        return entry

    async def _load_now(self, target: str, cached: CacheEntry) -> LoadedModel:
        """Make room under the lock (loads in flight count), then load beside other loads."""
        need = self._known.get(target) or cached.size
        async with self._lock:
            self._sync_generation()
            planned = need + self._reserved
            waits = self._room_made(await self._make_room(planned), planned)
            self._reserved += need
        try:
            await asyncio.gather(*waits)
        except BaseException:
            self._reserved -= need
            raise
        self._running += 1
        self._changes += 1
        alone, changes, before = self._running == 1, self._changes, self.memory_used()
        started = time.perf_counter()
        try:
            status, message = await self._api.load(target, cached)
            if status == 507:
                async with self._lock:
                    planned = need + self._reserved
                    retry = await self._make_room(planned, at_least=1)
                    waits = self._room_made(retry, planned)
                await asyncio.gather(*waits)
                if retry:
                    status, message = await self._api.load(target, cached)
        finally:
            self._running -= 1
            self._reserved -= need
            self._released.set()  # room planned for this load is free for waiting ones
        seconds = time.perf_counter() - started
        self._check(target, status, message)
        after = self.memory_used() if alone and changes == self._changes else None
        measured_rss = None if before is None or after is None else max(after - before, 0)
        fallback = measured_rss or need  # 0: freed memory reused, no measure of the model
        # Never less than its files: a delta is cut by memory freed beside the load, and a
        # model mapped from disk becomes resident as it is used, not when it loads.
        added = max(measured(message, fallback), cached.size)
        return self._loaded_one(target, added, seconds, load_cost(message, seconds))

    def _check(self, target: str, status: int, message: str) -> None:
        if not 200 <= status < 300:
            self._forget_disk(target)
            if status == 507:
                raise no_room(target, self.container.hostname, message, self.memory_limit)
            raise load_failed(target, self.container.hostname, status, message)

    def _loaded_one(self, target: str, added: int, seconds: float, cost: float) -> LoadedModel:
        """A load finished: ``added`` bytes in ``seconds`` (ModelLoadingTime); ``cost``, what
        the eviction policy weighs (``load_cost``)."""
        self._known[target] = added
        now = time.time()
        entry = LoadedModel(
            target, container_name(target), added, now, now, target in self.pinned, 0, seconds
        )
        self._loaded[target] = entry
        self.policy.on_load(target, added, cost)
        fetched = self._fetched.pop(target, None)
        self.metrics.loaded(target, fetched, seconds, len(self._loaded), added)
        log.info(
            "%s: loaded %s (+%d KiB, %.0f ms)", self._where, target, added >> 10, seconds * 1e3
        )
        return entry

    async def _download(self, target: str) -> CacheEntry:
        started = time.perf_counter()
        try:
            entry = await asyncio.to_thread(self.cache.fill, target, self.store)
        except StoreError as exc:
            raise store_failed(target, self.container.hostname, exc) from exc
        except OSError as exc:  # the cache's disk: full, read-only ...
            log.error("%s: cannot cache %s: %s", self._where, target, exc)
            raise unreachable(self.container.hostname, exc) from exc
        self.cache.add(entry)
        self._fetched[target] = fetched = time.perf_counter() - started
        self.metrics.download.observe(fetched)
        await self._shrink_disk()
        return entry

    async def _shrink_disk(self) -> None:
        """Delete least recently used files of models that are neither loaded nor loading."""
        removed = self.cache.shrink({*self._loaded, *self._loading})
        if removed:
            for _ in removed:
                self.metrics.evicted("disk")
            await asyncio.to_thread(purge, [path for _, path in removed])

    def _forget_disk(self, target: str) -> None:
        """A model the container could not load leaves the disk too: a fixed copy is re-read."""
        trash = self.cache.remove(target)
        if trash is not None:
            self._spawn(asyncio.to_thread(purge, [trash]))

    # ---- restarts ----------------------------------------------------------------------------

    def _sync_generation(self) -> None:
        if self.container.generation != self._generation:
            self._generation = self.container.generation
            if self._loaded:
                log.info("%s restarted: its %d models are gone", self._where, len(self._loaded))
            for target in self._loaded:
                self.policy.on_unload(target)
            self._loaded.clear()
            self._freeing = 0  # a new process: nothing of the old one's is resident

    def _restarted(self) -> None:
        self._sync_generation()
        if self.pinned:
            self._spawn(self.preload())

    # ---- helpers -----------------------------------------------------------------------------

    def _use(self, entry: LoadedModel) -> LoadedModel:
        entry.in_use += 1
        entry.uses += 1
        entry.last_used = time.time()
        return entry

    def _hit(self, target: str) -> None:
        """A request found ``target`` loaded (ModelCacheHit 1)."""
        self.metrics.hit(target)
        self.policy.on_hit(target)

    def _miss(self, target: str) -> None:
        """A request found ``target`` not loaded (ModelCacheHit 0); it waits for the load."""
        self.metrics.miss(target)
        self.policy.on_miss(target)

    def _waited(self, target: str, seconds: float) -> None:
        """A request that missed waited ``seconds`` for the load (ModelLoadingWaitTime): what
        waiting is left, since a request for a loaded model waits for nothing."""
        self.metrics.waited(target, seconds)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def _where(self) -> str:
        return f"{self.container.endpoint}/{self.container.hostname}"
