"""The workers claim a round ahead of their free slots: a request held for the next slot starts
the moment one frees, the container still runs no more than its cap at once, each endpoint's
requests start in the order they were accepted, and those held for an endpoint that stops
serving go back in line.

The workers run in this process on a real state database and real folders; the dispatcher is a
gate the test opens, so what is running and what is held can be looked at in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from gateway.asynchronous.storage import Storage
from gateway.asynchronous.worker import Workers
from gateway.calls import InvocationRequest, InvocationResult
from gateway.live import EndpointTable, Instance, build_live
from gateway.serving.dispatch import Dispatcher
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import FILENAME, AsyncStatus, StateStore
from pipelines.spec import EndpointSpec


class Gate:
    """The dispatcher's part the workers use: each call waits for ``opened``; the most calls
    in flight at once and the order they came in are noted."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.running = 0
        self.most = 0
        self.order: list[bytes] = []

    async def invoke(
        self, instance: Instance, request: InvocationRequest, *_: Any, **__: Any
    ) -> InvocationResult:
        self.running += 1
        self.most = max(self.most, self.running)
        self.order.append(request.body)
        try:
            await self.opened.wait()
        finally:
            self.running -= 1
        return InvocationResult(request.body, "text/plain", None)

    def in_use(self, instance: Instance, target: str) -> int | None:
        """No MultiModel containers here: no model is loaded anywhere."""
        return None


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"not in 30 s: {what}"
        await asyncio.sleep(0.02)


def test_held_requests_start_in_order_within_the_cap_and_go_back_when_the_endpoint_stops(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    spec = EndpointSpec.model_validate(
        {
            "name": "e",
            "containers": [{"command": ["true"]}],
            "async_inference": {
                "output_path": str(out),
                "max_concurrent_invocations_per_instance": 1,
            },
        }
    )
    live = build_live(spec, tmp_path / "state")
    names = [f"r{i}" for i in range(4)]
    with StateStore(tmp_path / FILENAME) as store:
        for name in names:
            store.enqueue(
                inference_id=name,
                endpoint="e",
                ttl=3600,
                timeout=60,
                output_location=str(out / f"{name}.out"),
                failure_location=str(out / f"{name}-error.out"),
                body=name.encode(),
            )

        def statuses() -> list[AsyncStatus]:
            return [r.status for r in store.invocations()]

        async def go() -> None:
            gate = Gate()
            plane = DataPlane(EndpointTable([live]), GatewaySettings())
            plane.invocations.dispatcher = cast(Dispatcher, gate)
            workers = Workers(store, plane.invocations, Storage(), max_bytes=1000, region="r")
            await workers.start()
            running, queued = AsyncStatus.RUNNING, AsyncStatus.QUEUED
            # r0 calls the container, r1 is held for the next slot, the rest wait in line.
            await until(lambda: statuses() == [running, running, queued, queued], "r1 held")
            assert gate.order == [b"r0"]
            # The endpoint stops serving: r1 goes back in line, at its place.
            plane.invocations.table.remove("e")
            workers.wake()
            await until(lambda: statuses() == [running, queued, queued, queued], "r1 back")
            plane.invocations.table.put(live)
            gate.opened.set()
            await until(lambda: all((out / f"{n}.out").exists() for n in names), "answers")
            await workers.aclose()
            assert gate.order == [n.encode() for n in names]  # the order they were accepted
            assert gate.most == 1  # max_concurrent_invocations_per_instance, held ones aside

        asyncio.run(go())
        assert statuses() == [AsyncStatus.COMPLETED] * 4
        assert [(out / f"{n}.out").read_bytes() for n in names] == [n.encode() for n in names]
