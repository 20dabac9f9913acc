"""The queue table and the workers' TTL: a real state database, a clock moved forward."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.asynchronous.storage import Storage
from gateway.asynchronous.worker import Workers
from gateway.live import EndpointTable
from gateway.serving.invocation import Invocations
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import FILENAME, AsyncStatus, Change, Claimed, QueuedInvocation, StateStore
from gateway.state.queue import EXPIRED_BATCH


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def enqueue(
    store: StateStore,
    folder: Path,
    name: str,
    endpoint: str = "e",
    ttl: float = 60,
    body: bytes = b"x",
) -> QueuedInvocation:
    return store.enqueue(
        inference_id=name,
        endpoint=endpoint,
        ttl=ttl,
        timeout=900,
        output_location=str(folder / f"{name}.out"),
        failure_location=str(folder / f"{name}-error.out"),
        body=body,
    )


def test_claims_come_in_order_per_endpoint_and_a_restart_requeues(tmp_path: Path) -> None:
    with StateStore(tmp_path / FILENAME) as store:
        for i in range(5):
            enqueue(store, tmp_path, f"a{i}", endpoint="a")
        enqueue(store, tmp_path, "b0", endpoint="b")
        assert store.queued_endpoints() == ["a", "b"]
        first = store.claim("a", 2)
        assert [r.inference_id for r in first] == ["a0", "a1"]
        assert all(r.status is AsyncStatus.RUNNING and r.attempts == 1 for r in first)
        store.release(first[1].seq)  # back at its place in line
        assert [r.inference_id for r in store.claim("a", 2)] == ["a1", "a2"]
        assert store.backlog()["a"].size == 5
        store.finish(first[0].seq, AsyncStatus.COMPLETED)
        store.finish(first[0].seq, AsyncStatus.FAILED, "twice")  # a finished one stays so
        assert store.get_invocation(first[0].seq).status is AsyncStatus.COMPLETED  # type: ignore[union-attr]
        assert store.backlog()["a"].size == 4
    with StateStore(tmp_path / FILENAME) as again:  # the next start
        assert again.requeue_running() == 2
        claimed = again.claim("a", 10)
        assert [r.inference_id for r in claimed] == ["a1", "a2", "a3", "a4"]
        assert [r.attempts for r in claimed] == [3, 2, 1, 1]


def test_a_request_past_its_ttl_fails_with_the_reason(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "out"
    with StateStore(tmp_path / FILENAME, clock=clock) as store:
        enqueue(store, out, "old", endpoint="gone", ttl=60)
        enqueue(store, out, "young", endpoint="gone", ttl=3600)
        clock.offset = 61.0

        async def run() -> None:
            workers = Workers(store, _core(), Storage(), max_bytes=1000, region="r")
            await workers.start()
            deadline = time.monotonic() + 30
            while not (out / "old-error.out").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await workers.aclose()

        asyncio.run(run())
        document = json.loads((out / "old-error.out").read_text())
        assert document["ErrorCode"] == "RequestExpired"
        assert "RequestTTLSeconds (60 s)" in document["Message"]
        by_id = {r.inference_id: r for r in store.invocations()}
        assert by_id["old"].status is AsyncStatus.FAILED
        assert "expired" in (by_id["old"].failure_reason or "")
        # Within its TTL, a request for an endpoint that is not serving waits.
        assert by_id["young"].status is AsyncStatus.QUEUED
        assert not (out / "young.out").exists() and not (out / "young-error.out").exists()


class Watched(StateStore):
    """A real store that notes the most expired requests claimed, and running, at once."""

    largest_claim = 0
    most_running = 0

    def apply(self, changes: Sequence[Change]) -> list[QueuedInvocation | Claimed | None]:
        made = super().apply(changes)
        for claimed in made:
            if isinstance(claimed, Claimed):  # the workers' claims go through their group
                rows = claimed.expired
                assert all(row.body is None for row in rows)  # an expired body stays put
                self.largest_claim = max(self.largest_claim, len(rows))
                running = len(self.invocations(AsyncStatus.RUNNING))
                self.most_running = max(self.most_running, running)
        return made


def test_expired_requests_are_claimed_a_batch_at_a_time_without_their_bodies(
    tmp_path: Path,
) -> None:
    clock = Clock()
    with StateStore(tmp_path / FILENAME, clock=clock) as store:
        seqs = [enqueue(store, tmp_path, f"r{i}", body=b"b" * 1000).seq for i in range(150)]
        clock.offset = 61.0
        first = store.claim_expired()
        assert [r.seq for r in first] == seqs[:EXPIRED_BATCH]  # the oldest first
        assert all(r.body is None and r.status is AsyncStatus.RUNNING for r in first)
        assert store.get_invocation(seqs[0]).body == b"b" * 1000  # type: ignore[union-attr]
        assert [r.seq for r in store.claim_expired(500)] == seqs[EXPIRED_BATCH:]
        assert store.claim_expired() == []


def test_a_large_expiring_backlog_all_fails_expired_a_batch_at_a_time(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "out"
    count = 3 * EXPIRED_BATCH
    with Watched(tmp_path / FILENAME, clock=clock) as store:
        for i in range(count):
            enqueue(store, out, f"r{i}", endpoint="gone", body=b"b" * 10_000)
        clock.offset = 61.0

        async def run() -> None:
            workers = Workers(store, _core(), Storage(), max_bytes=1000, region="r")
            await workers.start()
            deadline = time.monotonic() + 120
            while store.backlog() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await workers.aclose()

        asyncio.run(run())
        rows = store.invocations()
        assert len(rows) == count
        assert {r.status for r in rows} == {AsyncStatus.FAILED}
        assert store.largest_claim == EXPIRED_BATCH  # never more at once ...
        assert store.most_running <= EXPIRED_BATCH  # ... nor more being failed at once
        for i in range(count):
            document = json.loads((out / f"r{i}-error.out").read_text())
            assert document["ErrorCode"] == "RequestExpired"
            assert document["InferenceId"] == f"r{i}"
        assert not [p for p in out.iterdir() if not p.name.endswith("-error.out")]


def _core() -> Invocations:
    """The invocation core over an empty endpoint table."""
    return DataPlane(EndpointTable(), GatewaySettings()).invocations
