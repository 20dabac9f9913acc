"""The workers: queued requests, in order, through the same dispatch as a real-time call.

One loop claims work (woken by each submit, and every ``POLL`` seconds for what a restart or a
slow endpoint left), a round ahead of free slots (``claiming.py``), and runs each as a task of
its own, at most ``max_concurrent_invocations_per_instance`` x the endpoint's instances at once,
each call with the request's InvocationTimeoutSeconds and an answer of up to
TANDEM_ASYNC_MAX_BYTES (not the real-time ``timeout`` and TANDEM_MAX_PAYLOAD). A request ends in exactly one object: its answer
at the output location or its reason at the failure location, written before the queue marks it
finished; an unexpected error on the way ends it in an ``InternalFailure`` (logged with its
trace). A request claimed before (``attempts`` > 1: the gateway died while it ran) first looks
for an object the dead worker wrote and, finding one, is finished by it instead of being run
again; else it runs again and writes the same key. What an end is made of (its outcome, its
failure object, the retried writes) is in ``outcome.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.asynchronous.call import run_queued
from gateway.asynchronous.claiming import POLL, Claims
from gateway.asynchronous.commits import GroupCommit
from gateway.asynchronous.notify import Notifier, message
from gateway.asynchronous.outcome import (
    INTERNAL,
    SETTLE_BACKOFF,
    Failed,
    Outcome,
    broken_off,
    expired_outcome,
    failure_document,
    recovered,
    settle,
)
from gateway.asynchronous.slots import Slots
from gateway.asynchronous.storage import Storage, StorageError
from gateway.errors import ServiceUnavailable
from gateway.serving.invocation import Invocations
from gateway.state import AsyncStatus, Finish, QueuedInvocation, StateStore
from pipelines.spec import AsyncInferenceSpec

log = logging.getLogger("tandem.async")

#: Seconds an endpoint that answered ServiceUnavailable is left alone before its next claim.
PAUSE = 1.0
#: Times a container may break off one request (crash, cut or non-HTTP answer) before it fails:
#: the request itself may be what breaks it, and would otherwise loop until its TTL.
MAX_BREAKS = 3


class Workers:
    """Claims and runs queued requests; ``start`` after the endpoints serve, ``aclose`` before
    they stop."""

    def __init__(
        self,
        store: StateStore,
        invocations: Invocations,
        storage: Storage,
        *,
        max_bytes: int,
        region: str,
        notifier: Notifier | None = None,
        commits: GroupCommit | None = None,
    ) -> None:
        self.store = store
        #: Requests marked ended, a group per transaction (shared with the submitter).
        self.commits = commits or GroupCommit(store, storage)
        self.invocations = invocations
        self.table = invocations.table
        self.storage = storage
        self.max_bytes = max_bytes
        self.region = region
        self.notifier = notifier or Notifier()
        self._wake = asyncio.Event()
        self.slots = Slots()
        self.claims = Claims(store, invocations, self.commits, self.slots, self._spawn)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Per queued request (seq): how often a container broke off its call (MAX_BREAKS).
        self._breaks: dict[int, int] = {}
        self.settle_backoff = SETTLE_BACKOFF
        self._loop: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        requeued = await asyncio.to_thread(self.store.requeue_running)
        if requeued:
            log.info(
                "%d asynchronous requests were running when the gateway stopped: queued again",
                requeued,
            )
        self._loop = asyncio.get_running_loop().create_task(self._run())
        self.wake()

    def stop(self) -> None:
        """Stop claiming and cancel what runs, at once (on SIGINT/SIGTERM, before the server
        closes the containers' clients): what was running stays ``Running`` in the database
        and runs again at the next start, as after a crash, writing the same object."""
        self.claims.stopped = True  # no claimed request starts from now on
        if self._loop is not None:
            self._loop.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        self.stop()
        pending = [t for t in (self._loop, *self._tasks) if t is not None]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.notifier.aclose()
        await self.commits.aclose()

    def admit(self, endpoint: str) -> bool:
        """A request of ``endpoint`` is being accepted: True, it takes a free slot now and is
        accepted ``Running`` (``admitted`` starts it), when the endpoint serves, has room and
        nothing waits before it; False, it is accepted ``Queued`` and claimed in its turn."""
        serving = self._loop is not None and not self.claims.stopped
        if self.claims.waiting(endpoint):
            serving = False  # paused, or requests claimed before it go first
        return self.slots.admit(endpoint, self.table.get(endpoint) if serving else None)

    def admitted(self, endpoint: str, row: QueuedInvocation | None, direct: bool) -> None:
        """The acceptance ``admit`` answered is committed (``row``) or failed (None)."""
        if direct and row is not None:
            self._spawn(row, reserved=True)
            return
        if direct:
            self.slots.done(endpoint, called=False)
            self.claims.start_ready(endpoint)
        else:
            self.slots.queued(endpoint)
        self.wake()

    async def _run(self) -> None:
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):  # no task of its own per wait (wait_for)
                    woken = await self._wake.wait()
            self._wake.clear()
            try:
                await self.claims.fill(look=not woken)
            except Exception:  # a broken database is logged, and tried again
                log.exception("asynchronous queue: claiming work failed")

    def _spawn(
        self, row: QueuedInvocation, *, expired: bool = False, reserved: bool = False
    ) -> None:
        if not reserved:  # ``admit`` counted it already
            self.slots.take(row.endpoint)
        self.claims.expiring += expired
        held = [True]

        def ending() -> None:
            """The call is over: its slot goes to the next request while the end is recorded."""
            if held[0]:
                held[0] = False
                self.slots.called(row.endpoint)
                self.claims.start_ready(row.endpoint)
                self.wake()

        task = asyncio.get_running_loop().create_task(self._process(row, expired, ending))
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self.slots.done(row.endpoint, called=not held[0])
            self.claims.expiring -= expired
            self.claims.start_ready(row.endpoint)
            # _process ends every error itself; this is the last word, never a silent one.
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                log.error("asynchronous request %s: worker failed", row.inference_id, exc_info=exc)
            self.wake()

        task.add_done_callback(done)

    async def _process(
        self, row: QueuedInvocation, expired: bool = False, ending: Callable[[], None] | None = None
    ) -> None:
        """Run one claimed request to its one object, whatever goes wrong on the way; its slot
        is freed (``ending``) once the endpoint is done with it, before its end is recorded
        (MaxConcurrentInvocationsPerInstance counts calls to the container)."""
        try:
            outcome = await self._attempt(row, expired)
        except asyncio.CancelledError:
            raise  # stop(): it stays Running and runs again at the next start
        except Exception:
            log.exception(
                "asynchronous request %s of endpoint %s: internal error; it fails with "
                "InternalFailure",
                row.inference_id,
                row.endpoint,
            )
            outcome = Outcome("InternalFailure", INTERNAL)
        if outcome is not None:
            self._breaks.pop(row.seq, None)
            if ending is not None:
                ending()
            await self._end(row, outcome)

    async def _attempt(self, row: QueuedInvocation, expired: bool) -> Outcome | None:
        """How the request ends, its answer written; None: it went back in line."""
        if row.attempts > 1:
            found = await recovered(self.storage, row)
            if found is not None:
                return found
        if expired or self.store.now() > row.expires:
            return expired_outcome(row)
        try:
            content_type, answer = await run_queued(
                row, self.invocations, self.storage, self.max_bytes, self._broke_off
            )
        except ServiceUnavailable:
            # Its containers are restarting: back in line, tried again shortly (TTL permitting).
            self.claims.paused[row.endpoint] = time.monotonic() + PAUSE
            # Back to Queued: counted as an acceptance, so no claim meanwhile calls it empty.
            self.slots.queueing(row.endpoint)
            try:
                await asyncio.to_thread(self.store.release, row.seq)
            finally:
                self.slots.queued(row.endpoint)
            return None
        except Failed as failed:
            return Outcome(failed.code, failed.reason)
        return Outcome(content_type=content_type, answer=answer)

    def _broke_off(self, row: QueuedInvocation, exc: ServiceUnavailable) -> None:
        """Count a container breaking off the request; at MAX_BREAKS it fails (raises Failed)."""
        breaks = self._breaks[row.seq] = self._breaks.get(row.seq, 0) + 1
        if breaks >= MAX_BREAKS:
            raise broken_off(breaks, exc)

    async def _end(self, row: QueuedInvocation, outcome: Outcome) -> None:
        """Write the failure object (an answer is written by the group that finishes the row,
        or already, on S3), then finish the row.

        Each write is tried SETTLE_TRIES times. A failure object that still cannot be written
        leaves the row ``Running``: the request runs again at the next start. A row that cannot
        be marked finished stays ``Running`` too, and the next start finishes it by its object.
        """
        ok = outcome.code is None
        store, storage = self.store, self.storage
        if not ok and not outcome.recovered:
            body = failure_document(row, outcome)

            def write() -> Awaitable[None]:
                where = row.failure_location
                return asyncio.to_thread(storage.write, where, body, later=True)

            if not await self._settle(row, "write its failure object", write):
                log.error(
                    "asynchronous request %s failed (%s: %s) and its failure object could not "
                    "be written to %s: it stays Running and runs again at the next start",
                    row.inference_id,
                    outcome.code,
                    outcome.reason,
                    row.failure_location,
                )
                return
        ended = store.now()
        status = AsyncStatus.COMPLETED if ok else AsyncStatus.FAILED
        reason = None if ok else outcome.reason
        written = row.output_location if ok else row.failure_location

        unwritten: list[StorageError] = []

        async def finish() -> None:
            change = Finish(row.seq, status, reason)
            try:
                await self.commits.finish(change, written, outcome.answer)
            except StorageError as exc:  # the answer itself: an OutputError, not retried
                unwritten.append(exc)

        settled = await self._settle(row, "mark it finished", finish)
        if unwritten:
            reason = f"The answer could not be written: {unwritten[0]}"
            await self._end(row, Outcome("OutputError", reason))
            return
        if not settled:
            log.error(
                "asynchronous request %s ended (%s) but the queue could not mark it so: it "
                "stays Running until the next start, which finishes it by its object",
                row.inference_id,
                status.value,
            )
        if outcome.recovered:
            return  # notifications are sent at most once: the dead worker's was lost or sent
        config = self._config(row)
        webhook = (config.success_webhook if ok else config.error_webhook) if config else None
        if webhook is None:
            return
        failure = None if ok else f"{outcome.code}: {outcome.reason}"
        kind = {"content_type": outcome.content_type, "reason": failure}
        self.notifier.send(webhook, message(row, region=self.region, ok=ok, ended=ended, **kind))

    async def _settle(
        self, row: QueuedInvocation, what: str, act: Callable[[], Awaitable[object]]
    ) -> bool:
        """``settle`` at this worker's backoff (the tests shorten it)."""
        return await settle(row, what, act, backoff=self.settle_backoff)

    def _config(self, row: QueuedInvocation) -> AsyncInferenceSpec | None:
        live = self.table.get(row.endpoint)
        return None if live is None else live.spec.async_inference
