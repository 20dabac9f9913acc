"""Group commit: the queue's changes made meanwhile share one transaction, and one fsync.

Each accepted request is a row before its 202, and each ended one is marked after its object is
written; one transaction (and one ``synchronous=FULL`` fsync of the WAL) per request capped the
asynchronous path at a few hundred requests a second. Here a change waits for the commit in
progress to end, then goes with every other change that arrived in the meantime in the next one
(``StateStore.apply``): the more requests arrive together, the more share a commit, and a lone
one waits for nothing. A change's caller is answered only once its whole group is durable, so
nothing is acknowledged (202) before its row is on disk; a group that fails fails each of its
callers, and none of its changes was made.

The objects (answers, failure objects) written since the last commit are published by the group
that marks their requests ended: written to their hidden partial files (``Storage.write(...,
later=True)``; a small local answer on the event loop as its end is handed in, a large one by
the group itself), they are flushed together (beyond a few,
one ``syncfs`` per file system rather than an fsync each), renamed into place and their folders
fsynced once each, before the transaction. A row never says ``Completed`` for an answer a power
cut could undo, and an answer is never visible before it is whole and durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway.asynchronous.storage import Storage, StorageError, is_s3
from gateway.state import Change, Claim, Claimed, Enqueue, Finish, QueuedInvocation, StateStore

log = logging.getLogger("tandem.async")

#: Changes in one transaction at most: a group stays short enough for the next to start soon.
GROUP_LIMIT = 512
#: Bytes of a local answer written to its partial file by the caller's task rather than by the
#: commit thread; a larger one would hold the event loop too long.
WRITE_HERE = 64 * 1024


@dataclass
class _Waiting:
    change: Change
    #: An object this change records (made durable and put in place first), or None.
    written: str | None
    #: The object's bytes when the group writes it too (a local answer), else None.
    data: bytes | None
    future: asyncio.Future[QueuedInvocation | Claimed | None]


class GroupCommit:
    """The queue's writes, batched: ``enqueue`` and ``finish`` return once durable."""

    def __init__(self, store: StateStore, storage: Storage, limit: int = GROUP_LIMIT) -> None:
        self.store = store
        self.storage = storage
        self.limit = limit
        self._waiting: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None
        # One thread of its own: a commit never waits behind input reads and answer writes.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tandem-commit")
        #: Groups committed and the changes they held (the benchmark prints the mean size).
        self.groups = 0
        self.changes = 0

    async def enqueue(
        self,
        change: Enqueue,
        landed: Callable[[QueuedInvocation | None], None] | None = None,
    ) -> QueuedInvocation:
        """The row, once durable. ``landed`` is told the row (or None: not made) whether or not
        the caller is still waiting: a row accepted ``Running`` has a worker to start."""
        row = await self._submit(change, None, landed=landed)
        assert isinstance(row, QueuedInvocation)
        return row

    async def claim(self, claim: Claim) -> Claimed:
        """The workers' claim, in the next group's transaction (after its acceptances)."""
        claimed = await self._submit(claim, None)
        assert isinstance(claimed, Claimed)
        return claimed

    async def finish(
        self, change: Finish, written: str | None = None, data: bytes | None = None
    ) -> None:
        """Mark a request ended; ``written`` is the object it ended in (made durable and put in
        place first), ``data`` its bytes when the group is to write it (a local answer: one
        thread hand-off per group instead of one per answer). A StorageError: that object
        could not be written, and the row is left as it was."""
        await self._submit(change, written, data)

    async def _submit(
        self,
        change: Change,
        written: str | None,
        data: bytes | None = None,
        landed: Callable[[QueuedInvocation | None], None] | None = None,
    ) -> QueuedInvocation | Claimed | None:
        if written is not None and data is not None and len(data) <= WRITE_HERE:
            # A small answer's partial file is written here, on the loop (three system calls,
            # no fsync): from the commit thread, each call would hand the GIL over and back.
            await self._write(written, data)
            data = None
        loop = asyncio.get_running_loop()
        waiting = _Waiting(change, written, data, loop.create_future())
        # Read by whoever awaits it; this keeps one nobody awaits any more from being logged.
        waiting.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if landed is not None:

            def tell(f: asyncio.Future[QueuedInvocation | Claimed | None]) -> None:
                made = None if f.cancelled() or f.exception() else f.result()
                landed(made if isinstance(made, QueuedInvocation) else None)

            waiting.future.add_done_callback(tell)
        self._waiting.append(waiting)
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        # A caller that gives up (its client left) does not take the change back: it is
        # committed with its group all the same, as a request refused would never be.
        return await asyncio.shield(waiting.future)

    async def _write(self, location: str, data: bytes) -> None:
        if is_s3(location):
            await asyncio.to_thread(self.storage.write, location, data, later=True)
        else:
            self.storage.write(location, data, later=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group, self._waiting = self._waiting[: self.limit], self._waiting[self.limit :]
                try:
                    rows = await loop.run_in_executor(self._thread, self._commit, group)
                except BaseException as exc:
                    for waiting in group:
                        if not waiting.future.done():
                            waiting.future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                self.groups += 1
                self.changes += len(group)
                for waiting, row in zip(group, rows, strict=True):
                    if waiting.future.done():
                        continue
                    if isinstance(row, BaseException):
                        waiting.future.set_exception(row)
                    else:
                        waiting.future.set_result(row)
        finally:
            self._draining = None
            for waiting in self._waiting:  # cancelled: nothing left is committed now
                if not waiting.future.done():
                    waiting.future.set_exception(RuntimeError("the queue's commits stopped"))
            self._waiting = []

    def _commit(
        self, group: list[_Waiting]
    ) -> list[QueuedInvocation | Claimed | BaseException | None]:
        """In the commit thread: the group's objects made durable and put in place, then one
        transaction of the changes whose objects are (one that is not fails alone)."""
        failed: dict[str, StorageError] = {}
        for w in group:
            if w.written is not None and w.data is not None:
                try:
                    self.storage.write(w.written, w.data, later=True)
                except StorageError as exc:
                    failed[w.written] = exc
        written = [w.written for w in group if w.written is not None and w.written not in failed]
        failed.update(self.storage.publish(written) if written else {})
        ready = [w for w in group if w.written not in failed]
        rows = iter(self.store.apply([w.change for w in ready]))
        return [failed[w.written] if w.written in failed else next(rows) for w in group]

    async def aclose(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
            await asyncio.gather(self._draining, return_exceptions=True)
        # The group in the thread ends its transaction (committed or not) before this returns.
        await asyncio.to_thread(self._thread.shutdown, wait=True)
