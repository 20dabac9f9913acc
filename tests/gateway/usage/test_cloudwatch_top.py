"""CloudWatch keeps ``TargetModel`` series for the top models only (the ledger has them all)."""

from __future__ import annotations

from typing import Any

from tests.gateway.cloudwatch.conftest import client_for
from tests.gateway.usage.conftest import World


def model_series(cw: Any, name: str) -> set[str]:
    found: set[str] = set()
    for page in cw.get_paginator("list_metrics").paginate(
        Namespace="AWS/SageMaker", MetricName=name
    ):
        for metric in page["Metrics"]:
            found |= {d["Value"] for d in metric["Dimensions"] if d["Name"] == "TargetModel"}
    return found


def test_target_model_series_for_the_top_k_models_only(world: World) -> None:
    k = world.usage.top.k
    for i in range(k + 30):  # model i: i + 1 requests, so the busiest k are the last ones
        for _ in range(i + 1):
            world.recorder.invocation("mme", "AllTraffic", f"m{i:03d}", "2xx", 900, 10, 1, 1)
    world.metrics.flush()
    cw = client_for(world.url)
    assert model_series(cw, "Invocations") == {f"m{i:03d}" for i in range(30, k + 30)}
    ledger = world.usage.report(world.clock.now - 60, world.clock.now + 1, "model")
    assert len(ledger) == k + 30  # the ledger keeps every model
