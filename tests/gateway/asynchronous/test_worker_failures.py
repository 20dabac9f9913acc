"""Errors the workers do not expect still end each request in exactly one object, and the queue
goes on: an exception that is no ApiError from the dispatch (InternalFailure, no trace in the
object, the trace in the log), a database that refuses to mark a request finished, a failure
location that cannot be written.

The workers run in this process on a real state database and real folders; only the failures
are injected: a dispatcher that raises for some bodies, a store that refuses to mark a request
finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.asynchronous.outcome import INTERNAL, SETTLE_TRIES
from gateway.asynchronous.storage import Storage
from gateway.asynchronous.worker import Workers
from gateway.calls import InvocationRequest, InvocationResult
from gateway.errors import ModelError
from gateway.live import EndpointTable, Instance, build_live
from gateway.serving.dispatch import Dispatcher
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import FILENAME, AsyncStatus, Change, Finish, QueuedInvocation, StateStore
from pipelines.spec import EndpointSpec


class Echo:
    """The dispatcher's part the workers use: echoes, raises RuntimeError for ``boom`` bodies and
    a ModelError for ``bad`` ones; counts the calls by body."""

    def __init__(self) -> None:
        self.calls: dict[bytes, int] = {}

    async def invoke(
        self, instance: Instance, request: InvocationRequest, *_: Any, **__: Any
    ) -> InvocationResult:
        self.calls[request.body] = self.calls.get(request.body, 0) + 1
        if request.body.startswith(b"boom"):
            raise RuntimeError("a secret detail of the gateway's insides")
        if request.body.startswith(b"bad"):
            raise ModelError(
                "Received server error (500) from container-1",
                original_status=500,
                original_message="no",
            )
        return InvocationResult(request.body, "text/plain", None)

    def in_use(self, instance: Instance, target: str) -> int | None:
        """No MultiModel containers here: no model is loaded anywhere."""
        return None


class FlakyStore(StateStore):
    """A real store that refuses a group of changes marking a request finished the next
    ``refusals`` times, as a locked database."""

    refusals = 0

    def apply(self, changes: Sequence[Change]) -> list[QueuedInvocation | None]:
        if self.refusals > 0 and any(isinstance(c, Finish) for c in changes):
            self.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().apply(changes)


def enqueue(
    store: StateStore, out: Path, name: str, body: bytes, *, failure: Path | None = None
) -> QueuedInvocation:
    return store.enqueue(
        inference_id=name,
        endpoint="e",
        ttl=3600,
        timeout=60,
        output_location=str(out / f"{name}.out"),
        failure_location=str((failure or out) / f"{name}-error.out"),
        body=body,
    )


def run(store: StateStore, tmp_path: Path, echo: Echo, done: Callable[[], bool]) -> None:
    """Workers over ``store`` (one endpoint ``e``) until ``done()``, then closed: one start."""
    spec = EndpointSpec.model_validate(
        {
            "name": "e",
            "containers": [{"command": ["true"]}],
            "async_inference": {"output_path": str(tmp_path / "out")},
        }
    )
    live = build_live(spec, tmp_path / "state")

    async def go() -> None:
        plane = DataPlane(EndpointTable([live]), GatewaySettings())
        plane.invocations.dispatcher = cast(Dispatcher, echo)
        workers = Workers(store, plane.invocations, Storage(), max_bytes=1000, region="r")
        workers.settle_backoff = 0.01
        await workers.start()
        deadline = time.monotonic() + 30
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await workers.aclose()
        assert done(), "the workers did not get there in 30 s"

    asyncio.run(go())


def status(store: StateStore, name: str) -> AsyncStatus:
    (row,) = [r for r in store.invocations() if r.inference_id == name]
    return row.status


def test_an_unexpected_error_fails_the_request_and_the_queue_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, echo = tmp_path / "out", Echo()
    with StateStore(tmp_path / FILENAME) as store:
        enqueue(store, out, "first", b"boom")
        enqueue(store, out, "second", b"fine")
        with caplog.at_level(logging.ERROR, logger="tandem.async"):
            # Each object appears with the group commit that ends its request, in either order.
            ended = ("second.out", "first-error.out")
            run(store, tmp_path, echo, lambda: all((out / name).exists() for name in ended))
        document = json.loads((out / "first-error.out").read_text())
        assert document == {
            "ErrorCode": "InternalFailure",
            "Message": INTERNAL,
            "InferenceId": "first",
        }
        assert not (out / "first.out").exists()
        assert (out / "second.out").read_bytes() == b"fine"
        assert status(store, "first") is AsyncStatus.FAILED
        assert status(store, "second") is AsyncStatus.COMPLETED
    # The trace is the log's, not the client's.
    logged = [r for r in caplog.records if "first" in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "a secret detail" in str(logged[0].exc_info[1])
    assert "secret" not in document["Message"]


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


def test_finishing_is_retried_then_left_for_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, echo = tmp_path / "out", Echo()
    with FlakyStore(tmp_path / FILENAME) as store:
        # Refused fewer times than it is tried: it completes in this start.
        store.refusals = SETTLE_TRIES - 1
        enqueue(store, out, "retried", b"one")
        run(store, tmp_path, echo, lambda: status(store, "retried") is AsyncStatus.COMPLETED)
        assert (out / "retried.out").read_bytes() == b"one"
        # Refused every time: the answer is written, the row stays Running for the next start.
        store.refusals = SETTLE_TRIES
        enqueue(store, out, "left", b"two")
        given_up = "stays Running until the next start, which finishes it by its object"
        run(store, tmp_path, echo, lambda: logged(caplog, given_up))
        assert store.refusals == 0
        assert (out / "left.out").read_bytes() == b"two"
        assert status(store, "left") is AsyncStatus.RUNNING
        # The next start finishes it by the answer it finds, without running it again.
        run(store, tmp_path, echo, lambda: status(store, "left") is AsyncStatus.COMPLETED)
        assert echo.calls[b"two"] == 1
        assert not (out / "left-error.out").exists()


def test_a_failure_object_that_cannot_be_written_runs_again_at_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, echo = tmp_path / "out", Echo()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, where the failure folder should be")
    with StateStore(tmp_path / FILENAME) as store:
        enqueue(store, out, "lost", b"bad", failure=blocked)
        enqueue(store, out, "next", b"fine")
        given_up = "could not be written to"
        run(store, tmp_path, echo, lambda: (out / "next.out").exists() and logged(caplog, given_up))
        assert logged(caplog, "it stays Running and runs again at the next start")
        assert status(store, "lost") is AsyncStatus.RUNNING  # no object, so not ended
        assert status(store, "next") is AsyncStatus.COMPLETED
        # Once the failure folder can be written, the next start runs it again and fails it.
        blocked.unlink()
        run(store, tmp_path, echo, lambda: (blocked / "lost-error.out").exists())
        document = json.loads((blocked / "lost-error.out").read_text())
        assert document["ErrorCode"] == "ModelError"
        assert echo.calls[b"bad"] == 2
        assert not (out / "lost.out").exists()
