"""The guardrails' steps against a real state database, on a clock moved by hand.

``MaximumExecutionTimeoutInSeconds`` is at least 600 s on SageMaker, too long for a test on a
real gateway: here the clock the deadline is read from jumps past it while the canary bakes, and
the update rolls back naming the timeout, all traffic back on the old fleet. The fleets are
``LiveEndpoint`` objects (no container runs: ``Guardrails`` only moves the share between them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.lifecycle.deployment import Guardrails
from gateway.live import LiveEndpoint
from gateway.state import FILENAME, EndpointStatus, StateStore, WrongState
from tests.gateway.harness import endpoint


def fleet(name: str) -> LiveEndpoint:
    spec = {"name": "ep", "containers": [{"hostname": "main", "command": [name]}]}
    return LiveEndpoint.single(endpoint({name: "http://127.0.0.1:9"}, **spec))


def updating(tmp_path: Path, policy: dict[str, Any]) -> StateStore:
    store = StateStore(tmp_path / FILENAME)
    for version in ("v1", "v2"):
        store.add_model(version, f"arn:{version}", {})
        store.add_config(version, f"arn:c{version}", {}, {"AllTraffic": version})
    store.add_endpoint("ep", "arn:ep", "v1", {})
    store.set_endpoint_status("ep", EndpointStatus.IN_SERVICE)
    rollout = {"policy": policy, "phase": "Creating", "share": 0.0}
    store.begin_update("ep", "v2", rollout=rollout, remember=policy)
    return store


def canary(timeout: int) -> dict[str, Any]:
    routing = {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
               "WaitIntervalInSeconds": 3600}  # fmt: skip
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                      "MaximumExecutionTimeoutInSeconds": timeout}}  # fmt: skip


def test_past_the_execution_timeout_the_canary_rolls_back(tmp_path: Path) -> None:
    store = updating(tmp_path, canary(600))
    record = store.get_endpoint("ep")
    assert record is not None and record.update_started is not None
    now = [record.update_started]
    guardrails = Guardrails(store, None, clock=lambda: now[0])
    old, new = fleet("old"), fleet("new")

    async def scenario() -> str | None:
        task = asyncio.create_task(guardrails.run(record, old, new))
        while old.shift is None:  # the canary took its share
            await asyncio.sleep(0.01)
        assert old.shift.share == pytest.approx(0.2) and old.shift.to is new
        now[0] += 601  # the 3600 s bake outlasts the 600 s limit
        return await task

    reason = asyncio.run(scenario())
    assert reason is not None and "MaximumExecutionTimeoutInSeconds" in reason
    assert "step 1 of 2, 20% of the traffic on the new fleet" in reason
    assert old.shift is None, "all traffic back on the old fleet"
    assert guardrails.rollbacks.labels("ep", "timeout")._value.get() == 1
    stages = (store.get_endpoint("ep").rollout or {})["stages"]  # type: ignore[union-attr]
    assert [s["Status"] for s in stages] == ["ActivatingTraffic", "Baking"]
    store.close()


def test_an_endpoint_deleted_while_it_bakes_ends_the_bake_at_once(tmp_path: Path) -> None:
    store = updating(tmp_path, canary(600))
    record = store.get_endpoint("ep")
    assert record is not None
    guardrails = Guardrails(store, None)
    old, new = fleet("old"), fleet("new")

    async def scenario() -> None:
        task = asyncio.create_task(guardrails.run(record, old, new))
        while old.shift is None:
            await asyncio.sleep(0.01)
        store.begin_delete("ep")
        with pytest.raises(WrongState):
            await task

    asyncio.run(scenario())
    assert old.shift is None
    store.close()
