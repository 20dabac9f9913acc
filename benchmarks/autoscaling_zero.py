"""The first answer from zero of ``benchmarks/autoscaling.py``: the variant scaled to zero
instances, then one request held while an instance starts (``gateway/serving/held.py``), and
the moments of the wake and of the instance's start, read from the gateway's own APIs."""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks import autoscaling_story as story
from benchmarks.gateway import CSV

Zero = tuple[float, float, dict[str, float]]


def from_zero(
    url: str, clients: dict[str, Any], endpoint: str, target: dict[str, str], warm: int
) -> Zero:
    """Scale to zero, then one request from zero and ``warm`` warm ones: (first s, warm p50 s,
    the moments of the wake and of the instance's start, in s after the request)."""
    import httpx

    aas, sm = clients["aas"], clients["sagemaker"]
    aas.register_scalable_target(**target, MinCapacity=0, MaxCapacity=4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the last scale-in's activity is over
        found = aas.describe_scaling_activities(ServiceNamespace="sagemaker")
        if all(a["StatusCode"] != "InProgress" for a in found["ScalingActivities"]):
            break
        time.sleep(0.2)
    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=endpoint)
        (variant,) = described["ProductionVariants"]
        if described["EndpointStatus"] == "InService" and variant["CurrentInstanceCount"] == 0:
            break
        time.sleep(0.1)
    else:
        raise SystemExit("the variant did not reach zero instances")
    invoke = f"{url}/endpoints/{endpoint}/invocations"
    headers = {"Content-Type": "text/csv"}
    with httpx.Client(timeout=60) as client:
        began, wall = time.perf_counter(), time.time()
        answer = client.post(invoke, content=CSV, headers=headers)
        first = time.perf_counter() - began
        if answer.status_code != 200:
            raise SystemExit(f"the request from zero failed: {answer.status_code} {answer.text}")
        launcher, interpreter = story.newest_container()
        times = []
        for _ in range(warm):
            began = time.perf_counter()
            client.post(invoke, content=CSV, headers=headers).raise_for_status()
            times.append(time.perf_counter() - began)
    moments = {
        "the wake's scaling activity": story.decided(aas, "requests wait", "", wall),
        "the launcher started": launcher,
        "container: its interpreter started": interpreter,
        **story.stages(clients["logs"], endpoint, wall),
    }
    seen = {name: t - wall for name, t in moments.items() if t is not None}
    return first, statistics.median(times), {**seen, "answered": first}


def moments_line(moments: dict[str, float]) -> str:
    return ", ".join(f"{name} {t * 1e3:.0f}" for name, t in moments.items())
