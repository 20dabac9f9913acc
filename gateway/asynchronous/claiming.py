"""Claiming: which queued requests the workers take next, a round ahead of their free slots.

A look at the queue is a change of the next group commit (``commits.py``): expired requests up
to EXPIRED_BATCH, and per serving endpoint what fits and as many again. Those claimed ahead wait
here, ``Running`` in the queue and in order, for the next free slot (``start_ready``); those of an
endpoint that stops serving go back in line (``put_back``). Running and ending a request is
``worker.py``'s; this hands each one it starts to ``spawn``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

from gateway.asynchronous.commits import GroupCommit
from gateway.asynchronous.slots import Slots, capacity
from gateway.live import LiveEndpoint
from gateway.serving.held import variant_key
from gateway.serving.invocation import Invocations
from gateway.state import Claim, QueuedInvocation, StateStore
from gateway.state.queue import EXPIRED_BATCH

#: Seconds between looks at the queue when nothing wakes the loop.
POLL = 1.0
#: Finished rows are kept this long (for ``tandem`` tooling), then dropped: the objects remain.
KEEP_FINISHED = 24 * 3600.0


class Spawn(Protocol):
    """Starts a claimed request (its slot taken, unless ``reserved``) as a task of its own."""

    def __call__(
        self, row: QueuedInvocation, *, expired: bool = False, reserved: bool = False
    ) -> None: ...


class Claims:
    """The queue's claims and the requests claimed ahead, per endpoint."""

    def __init__(
        self,
        store: StateStore,
        invocations: Invocations,
        commits: GroupCommit,
        slots: Slots,
        spawn: Spawn,
    ) -> None:
        self.store = store
        self.invocations = invocations
        self.table = invocations.table
        self.commits = commits
        self.slots = slots
        self.spawn = spawn
        #: Per endpoint, requests claimed ahead (``Running``, in order) for the next free slot.
        self.ready: dict[str, deque[QueuedInvocation]] = {}
        #: Per endpoint that answered ServiceUnavailable: when it may be claimed for again.
        self.paused: dict[str, float] = {}
        #: Expired requests being failed now: claims of expired ones stop at EXPIRED_BATCH.
        self.expiring = 0
        self.stopped = False
        self._pruned = 0.0
        #: When the queue was last looked at (``fill``).
        self._looked = 0.0

    def waiting(self, endpoint: str) -> bool:
        """Paused, or requests claimed before a new one go first: it does not skip the queue."""
        return self.paused.get(endpoint, 0.0) > time.monotonic() or bool(self.ready.get(endpoint))

    async def fill(self, look: bool = True) -> None:
        """Claim at one look (a change of the next group commit): expired requests up to
        EXPIRED_BATCH being failed, and each serving endpoint's up to its room plus a round.
        Woken (``look`` False) with nothing an endpoint with room could have waiting, it does
        not look: expired requests of the others are claimed at the next ``POLL``."""
        now = time.monotonic()
        free: dict[str, int] = {}
        at_zero: list[LiveEndpoint] = []
        for live in self.table.live():
            if live.spec.async_inference is None or self.paused.get(live.name, 0.0) > now:
                continue  # one not serving (yet) waits, and its TTL runs
            if not any(v.instances for v in live.variants):
                at_zero.append(live)
                continue
            # Claimed ahead first; a claim takes what fits and as many again (for freed slots)
            room = self.start_ready(live.name, live)
            free[live.name] = room + capacity(live) - len(self.ready.get(live.name, ()))
        if at_zero:
            # Scaled to zero: the requests stay queued (HasBacklogWithoutCapacity) and the
            # autoscaling side hears at once that an instance is wanted, if any are queued.
            queued = set(await asyncio.to_thread(self.store.queued_endpoints))
            for live in at_zero:
                if live.name in queued:
                    for variant in live.variants:
                        self.invocations.held.want(
                            variant_key(live.name, variant.name), request=False
                        )
        await self.put_back([e for e in self.ready if e not in free])
        quiet = all(self.slots.empty(e) for e, n in free.items() if n > 0)
        if not look and not at_zero and quiet and now - self._looked < POLL:
            return
        self._looked = now
        room = EXPIRED_BATCH - self.expiring
        before = self.slots.before_claim(free)
        claimed = await self.commits.claim(Claim(free, room))
        self.slots.after_claim(free, before, claimed.taken)
        for row in claimed.expired:
            self.spawn(row, expired=True)
        for row in claimed.taken:
            self.ready.setdefault(row.endpoint, deque()).append(row)
        for endpoint in list(self.ready):
            self.start_ready(endpoint)
        if time.time() - self._pruned > 3600:
            self._pruned = time.time()
            await asyncio.to_thread(self.store.prune_finished, time.time() - KEEP_FINISHED)

    async def put_back(self, endpoints: list[str]) -> None:
        """Requests claimed ahead for endpoints that stopped serving (paused, gone, at zero)
        go back in line, at their places, and wait there as any other would."""
        for endpoint in endpoints:
            rows = self.ready.pop(endpoint)
            self.slots.queueing(endpoint)  # no claim meanwhile calls it empty
            try:
                await asyncio.to_thread(self.store.release, *(r.seq for r in rows))
            except Exception:  # still held here: tried again at the next look
                self.ready.setdefault(endpoint, deque()).extendleft(reversed(rows))
                raise
            finally:
                self.slots.queued(endpoint)

    def start_ready(self, endpoint: str, live: LiveEndpoint | None = None) -> int:
        """Start ``endpoint``'s claimed requests while it has room; the room left (those of an
        endpoint gone wait for ``put_back``)."""
        live = live or self.table.get(endpoint)
        if live is None:
            return 0
        ready = self.ready.get(endpoint)
        room = self.slots.room(live)
        while ready and room > 0 and not self.stopped:
            self.spawn(ready.popleft())
            room -= 1
        if not ready:
            self.ready.pop(endpoint, None)
        return room
