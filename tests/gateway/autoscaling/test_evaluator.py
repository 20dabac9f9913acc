"""The evaluator in-process, on a clock the test moves: a change the running side could not
make is a Failed activity that says why, and cooldowns hold the next decision back.

The control plane and the metric store are real; the running side is stood in for by a
reconciler that only writes the states the real one reports (it is not under test here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.autoscaling import Evaluator, ScalingApi, ScalingStore, StoreMetrics
from gateway.cloudwatch import MetricApi, MetricService
from gateway.control import ControlPlane
from gateway.state import FILENAME, EndpointStatus, StateStore
from tests.gateway.autoscaling.conftest import LOAD, TARGET
from tests.gateway.cloudwatch.conftest import Clock
from tests.gateway.control.conftest import ROLE, SKLEARN_IMAGE


@dataclass
class Held:
    """Parks every kick: the test says how each change ends."""

    kicked: list[str] = field(default_factory=list)

    def kick(self, endpoint: str) -> None:
        self.kicked.append(endpoint)


@dataclass
class World:
    clock: Clock
    store: StateStore
    metrics: MetricApi
    api: ScalingApi
    evaluator: Evaluator
    held: Held
    running: list[int]

    def load(self, value: float, seconds: int = 3) -> None:
        """``value`` in each of the last ``seconds`` one-second datapoints."""
        self.metrics.put_metric_data({**{"Namespace": LOAD["Namespace"]}, "MetricData": [
            {"MetricName": LOAD["MetricName"], "Value": value, "StorageResolution": 1,
             "Timestamp": datetime.fromtimestamp(self.clock.now - i, UTC)}
            for i in range(1, seconds + 1)
        ]})  # fmt: skip

    def activities(self) -> list[dict[str, Any]]:
        found = self.api.call("DescribeScalingActivities", {"ServiceNamespace": "sagemaker"})
        return list(found["ScalingActivities"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    store = StateStore(tmp_path / "state" / FILENAME)
    held, running = Held(), [1]
    plane = ControlPlane(
        store, model_roots=[tmp_path], reconciler=held,
        observe=lambda name: {"AllTraffic": (1.0, running[0])},
    )  # fmt: skip
    container = {"Image": SKLEARN_IMAGE, "ModelDataUrl": str(model_dir)}
    plane.call("CreateModel", {"ModelName": "m", "PrimaryContainer": container,
                               "ExecutionRoleArn": ROLE})  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large"}  # fmt: skip
    plane.call("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]})
    plane.call("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c"})
    store.set_endpoint_status("ep", EndpointStatus.IN_SERVICE, expect={EndpointStatus.CREATING})
    held.kicked.clear()
    clock = Clock()
    service = MetricService(tmp_path / "metrics.db", retention=86400, flush_interval=60,
                            max_points=10_000, clock=clock)  # fmt: skip
    metrics = MetricApi(service)
    scaling = ScalingStore(tmp_path / "state" / FILENAME)
    api = ScalingApi(scaling, plane, StoreMetrics(metrics), clock=clock)
    evaluator = Evaluator(api, interval=1, minute=1, clock=clock)
    api.call("RegisterScalableTarget", {**TARGET, "MinCapacity": 1, "MaxCapacity": 4})
    try:
        yield World(clock, store, metrics, api, evaluator, held, running)
    finally:
        scaling.close()
        service.store.close()
        store.close()


def policy(world: World, **config: Any) -> None:
    world.load(0.0)
    spec = {**LOAD, "Statistic": "Average"}
    world.api.call("PutScalingPolicy", {
        "PolicyName": "load", **TARGET, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 100.0, "CustomizedMetricSpecification": spec, **config},
    })  # fmt: skip


def test_a_change_the_running_side_could_not_make_is_a_failed_activity(world: World) -> None:
    policy(world)
    world.clock.now += 5
    world.load(300.0)
    asyncio.run(world.evaluator.tick())
    assert world.held.kicked == ["ep"]
    (activity,) = world.activities()
    assert (activity["StatusCode"], activity["Description"]) == (
        "InProgress", "Setting desired instance count to 3.")  # fmt: skip
    reason = "the host's budget of 2 instances is used up (ResourceLimitExceeded)"
    world.store.set_endpoint_status(
        "ep", EndpointStatus.IN_SERVICE, reason, expect={EndpointStatus.UPDATING}
    )
    asyncio.run(world.evaluator.tick())
    (activity,) = world.activities()
    assert activity["StatusCode"] == "Failed"
    assert reason in activity["StatusMessage"]


def test_the_scale_out_cooldown_holds_the_next_scale_out_back(world: World) -> None:
    policy(world, ScaleOutCooldown=120)  # two seconds of a one-second minute
    world.clock.now += 5
    world.load(200.0)
    asyncio.run(world.evaluator.tick())
    world.running[0] = 2
    world.store.finish_resize("ep")
    world.clock.now += 1
    world.load(400.0)  # still above the target at 2 instances
    asyncio.run(world.evaluator.tick())
    assert [a["StatusCode"] for a in world.activities()] == ["Successful"]
    assert world.held.kicked == ["ep"]  # within the cooldown: no second change
    world.clock.now += 2
    world.load(400.0)
    asyncio.run(world.evaluator.tick())
    assert world.held.kicked == ["ep", "ep"]
    assert world.activities()[0]["Description"] == "Setting desired instance count to 4."


def test_only_the_newest_activities_of_a_target_are_kept(world: World) -> None:
    store, key = world.api.store, (TARGET["ServiceNamespace"], TARGET["ResourceId"],
                                   TARGET["ScalableDimension"])  # fmt: skip
    for i in range(5):
        store.put("activity", key, f"a{i}", "ep", {"ActivityId": f"a{i}"})
    store.prune("activity", key, 3)
    kept = [body["ActivityId"] for body, _ in store.list("activity", newest_first=True)]
    assert kept == ["a4", "a3", "a2"]
