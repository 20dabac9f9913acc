"""Work per key (an endpoint, an inference component), one step at a time, in the background.

A kick while a key's step runs makes it look again once that step ends, so the work always
ends on the latest desired state, and two steps of one key never overlap. Shutdown cancels it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

logger = logging.getLogger("tandem.reconciler")


class KeyedWork:
    def __init__(self, work: Callable[[str], Awaitable[None]], what: str) -> None:
        """``work(key)`` brings what runs of ``key`` in line; ``what`` names it in the log."""
        self._work = work
        self._what = what
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        #: Shutdown has begun: kicks are ignored and no step starts again.
        self.closing = False

    def kick(self, key: str) -> None:
        if self.closing:
            return
        self._dirty.add(key)
        if key not in self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks[key] = loop.create_task(self._run(key), name=f"{self._what} {key}")

    async def settled(self, keys: Iterable[str] | None = None) -> None:
        """Wait until no work is pending or running for ``keys`` (None: any key)."""
        wanted = None if keys is None else set(keys)
        while True:
            running = [t for k, t in self._tasks.items() if wanted is None or k in wanted]
            if not running:
                return
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        """No new work; what runs is cancelled."""
        self.closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: str) -> None:
        try:
            while key in self._dirty and not self.closing:
                self._dirty.discard(key)
                try:
                    await self._work(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("%s %s: reconciling failed", self._what, key)
        finally:
            self._tasks.pop(key, None)
