"""Where the seconds from a load step to a new instance serving go (``benchmarks/autoscaling.py``).

Two parts: what AWS's rule costs (three ten-second datapoints above the target, the first of them
the period that holds the step, when its average is already above the target) and what Tandem
adds (the evaluator's look after the third period closes, the instance's start: its launcher,
its interpreter, its web stack, scikit-learn and the model, ``/ping``, the routing). Each moment
is read from the gateway's own APIs (CloudWatch's datapoints, the scaling activity, the
container's log lines as CloudWatch Logs keeps them) and from the process table, never guessed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: The high-resolution metric's period (SageMakerVariantConcurrentRequestsPerModelHighResolution).
PERIOD = 10
#: What the container prints at each stage of its start (uvicorn's and its own log lines).
STAGES = (
    ("Started server process", "container: its web stack imported"),
    ("loaded model", "container: scikit-learn imported, the model loaded"),
    ("Uvicorn running", "container: listening (/ping answers)"),
)


@dataclass
class Story:
    """Moments in epoch seconds (None: not seen)."""

    step: float
    #: (period start, value, samples) of the datapoints around the step.
    points: list[tuple[int, float, float]] = field(default_factory=list)
    decided: float | None = None
    launcher: float | None = None
    interpreter: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    serving: float | None = None


def rule_met(points: list[tuple[int, float, float]], target: float, after: float) -> float | None:
    """When AWS's rule is first met after ``after``: the end of the third datapoint in a row
    above ``target`` (ten-second periods, as kept by the metric store)."""
    above = {start for start, value, _ in points if value > target}
    for start, _, _ in sorted(points):
        end = start + PERIOD
        if end >= after and all(start - k * PERIOD in above for k in range(3)):
            return float(end)
    return None


def datapoints(cw: Any, endpoint: str, start: float, end: float) -> list[tuple[int, float, float]]:
    """ConcurrentRequestsPerModel's ten-second datapoints (Average and SampleCount) over
    [start, end), as the policy reads them."""
    answer = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ConcurrentRequestsPerModel",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=datetime.fromtimestamp(math.floor(start / PERIOD) * PERIOD, UTC),
        EndTime=datetime.fromtimestamp(end, UTC), Period=PERIOD,
        Statistics=["Average", "SampleCount"],
    )  # fmt: skip
    return sorted(
        (int(p["Timestamp"].timestamp()), float(p["Average"]), float(p["SampleCount"]))
        for p in answer["Datapoints"]
    )


def _boot_error() -> float:
    """What to subtract from psutil's creation times: it adds the boot time in whole seconds
    (``/proc/stat``), which ``/proc/uptime`` gives to a hundredth."""
    import psutil

    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return float(psutil.boot_time()) - (time.time() - uptime)


def newest_container() -> tuple[float | None, float | None]:
    """Creation times of the newest container process under this one and of its launcher."""
    import psutil

    error = _boot_error()

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            argv = proc.cmdline()
            if "containers" in argv and "-m" in argv and not any("_launcher" in a for a in argv):
                found.append(proc)
        except psutil.Error:
            continue
    if not found:
        return None, None
    newest = max(found, key=lambda p: p.create_time())
    try:
        parent = newest.parent()
        launcher = parent.create_time() - error if parent else None
        return launcher, newest.create_time() - error
    except psutil.Error:
        return None, newest.create_time() - error


def stages(logs: Any, endpoint: str, since: float) -> dict[str, float]:
    """The first log line of each start stage after ``since``, from CloudWatch Logs."""
    events = logs.filter_log_events(
        logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}", startTime=int(since * 1000)
    )["events"]
    found: dict[str, float] = {}
    for event in sorted(events, key=lambda e: e["timestamp"]):
        for text, name in STAGES:
            if text in event["message"] and name not in found:
                found[name] = event["timestamp"] / 1000
    return found


def decided(aas: Any, cause: str, description: str, after: float) -> float | None:
    """When the first scaling activity after ``after`` with ``cause``/``description`` began."""
    found = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
    times = [
        a["StartTime"].timestamp() for a in found
        if cause in a["Cause"] and description in a["Description"]
        and a["StartTime"].timestamp() >= after
    ]  # fmt: skip
    return min(times, default=None)


def lines(story: Story, target: float) -> list[str]:
    """The breakdown, printed after the timeline."""

    def at(t: float | None) -> str:
        return "   not seen" if t is None else f"{t - story.step:+7.2f} s"

    out = ["\nfrom the step to the second instance serving (seconds after the step):"]
    phase = story.step % PERIOD
    out.append(f"  the step came {phase:.1f} s into its {PERIOD} s period")
    out.append(f"  datapoints of ConcurrentRequestsPerModel (Average, {PERIOD} s; the target "
               f"{target:g}), each readable when its period closes:")  # fmt: skip
    for start, value, samples in story.points:
        mark = "above" if value > target else "not above"
        holds = "  <- holds the step" if start <= story.step < start + PERIOD else ""
        out.append(f"    closes {at(start + PERIOD)}: {value:6.2f} over {samples:7.0f} samples, "
                   f"{mark}{holds}")  # fmt: skip
    met = rule_met(story.points, target, story.step)
    out.append(f"  AWS's rule met (3rd datapoint above the target closed)  {at(met)}")
    rows = [
        ("the evaluator decided, UpdateEndpointWeightsAndCapacities", story.decided),
        ("the instance's launcher started", story.launcher),
        ("container: its interpreter started", story.interpreter),
        *((name, story.stages.get(name)) for _, name in STAGES),
        ("serving (CurrentInstanceCount 2, polled every 0.1 s)", story.serving),
    ]
    for name, when in rows:
        out.append(f"  {name:<56} {at(when)}")
    if met is not None and story.serving is not None:
        own = story.serving - met
        looked = (story.decided - met) if story.decided is not None else float("nan")
        out.append(f"  so: AWS's rule {met - story.step:.1f} s, then Tandem {own:.2f} s (the "
                   f"evaluator's look {looked:.2f} s, the instance's start and routing "
                   f"{own - looked:.2f} s)")  # fmt: skip
    return out
