"""Scaling policies: their checks, and target tracking's evaluation as AWS documents it.

A target-tracking policy stands for two alarms on its metric (their names are returned as
AWS's are): *high* when the last 3 datapoints are above the target (one minute each, or ten
seconds for a high-resolution metric), *low* when the last 15 are below 90 % of it. High scales
out to ``ceil(capacity * metric / target)``; low scales in to the same formula, unless
``DisableScaleIn``. The metric is read through CloudWatch's own operations
(``MetricApi.get_metric_statistics``, ``list_metrics``), so what scales is what a dashboard shows.
``minute`` is the length of a "minute" (the ``autoscaling_minute`` setting): shorter in tests,
cooldowns shrink with it, and a per-minute sum is scaled back to per minute; SageMaker's own
metrics are never read finer than the store keeps them (60 s, 10 s for the high-resolution one).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.autoscaling import steps
from gateway.autoscaling.errors import ValidationException
from gateway.cloudwatch import MetricApi
from gateway.cloudwatch.errors import CloudWatchError

#: predefined type -> (metric name, statistic, high resolution, a per-minute sum, the seconds
#: per datapoint the metric store keeps it at: no finer period can be read)
PREDEFINED = {
    "SageMakerVariantInvocationsPerInstance": ("InvocationsPerInstance", "Sum", False, True, 60),
    "SageMakerVariantConcurrentRequestsPerModelHighResolution": (
        "ConcurrentRequestsPerModel", "Average", True, False, 10,
    ),
    "SageMakerInferenceComponentInvocationsPerCopy": ("InvocationsPerCopy", "Sum", False, True, 60),
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution": (
        "ConcurrentRequestsPerCopy", "Average", True, False, 10,
    ),
}  # fmt: skip
#: The predefined types of an inference component's copies (the others are a variant's).
COMPONENT_TYPES = frozenset(k for k in PREDEFINED if k.startswith("SageMakerInferenceComponent"))
HIGH_POINTS, LOW_POINTS, LOW_SHARE = 3, 15, 0.9
#: SageMaker's default cooldowns (seconds of a real minute's length).
DEFAULT_COOLDOWN = 300
_HIGH_RES = {60: 10, 30: 5, 10: 1, 5: 1, 1: 1}


class MetricLookup(Protocol):
    def exists(self, namespace: str, name: str, dims: list[dict[str, str]]) -> bool: ...

    def values(self, metric: Metric, period: int, start: float, end: float) -> dict[int, float]: ...


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dims: tuple[tuple[str, str], ...]
    statistic: str
    high_resolution: bool = False
    per_minute: bool = False
    #: Missing datapoints read as 0 (no invocations), not as missing.
    missing_is_zero: bool = False
    #: Seconds per datapoint as stored: the shortest period it is read at.
    resolution: int = 1


class StoreMetrics:
    """``MetricLookup`` over the gateway's metric store, through CloudWatch's operations."""

    def __init__(self, api: MetricApi) -> None:
        self.api = api

    def exists(self, namespace: str, name: str, dims: list[dict[str, str]]) -> bool:
        found = self.api.list_metrics(
            {"Namespace": namespace, "MetricName": name, "Dimensions": dims}
        )
        want = {(d["Name"], d["Value"]) for d in dims}
        return any(
            {(d["Name"], d["Value"]) for d in m["Dimensions"]} == want for m in found["Metrics"]
        )

    def values(self, metric: Metric, period: int, start: float, end: float) -> dict[int, float]:
        answer = self.api.get_metric_statistics(
            {
                "Namespace": metric.namespace, "MetricName": metric.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dims],
                "StartTime": datetime.fromtimestamp(start, UTC),
                "EndTime": datetime.fromtimestamp(end, UTC),
                "Period": period, "Statistics": [metric.statistic],
            }
        )  # fmt: skip
        return {
            int(p["Timestamp"].timestamp()): float(p[metric.statistic])
            for p in answer["Datapoints"]
            if p.get(metric.statistic) is not None
        }


def check(params: dict[str, Any], lookup: MetricLookup) -> dict[str, Any]:
    """The policy's stored body (type and configuration), or ValidationException naming why."""
    kind = params.get("PolicyType", "StepScaling")
    if kind == "StepScaling":
        return steps.check(params)
    if kind != "TargetTrackingScaling":
        raise ValidationException(
            f"PolicyType {kind!r} is not served by Tandem: it evaluates TargetTrackingScaling "
            "and StepScaling policies."
        )
    config = params.get("TargetTrackingScalingPolicyConfiguration")
    if config is None:
        raise ValidationException(
            "TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling "
            "policy."
        )
    if params.get("StepScalingPolicyConfiguration") is not None:
        raise ValidationException(
            "StepScalingPolicyConfiguration must not be given with a TargetTrackingScaling policy."
        )
    prefix = "TargetTrackingScalingPolicyConfiguration."
    if not 8.515920e-109 <= config["TargetValue"] <= 6.944668e100:
        raise ValidationException(
            f"{prefix}TargetValue must be above 0 (got {config['TargetValue']})."
        )
    for cooldown in ("ScaleOutCooldown", "ScaleInCooldown"):
        if config.get(cooldown, 0) < 0:
            raise ValidationException(f"{prefix}{cooldown} must not be negative.")
    predefined = config.get("PredefinedMetricSpecification")
    custom = config.get("CustomizedMetricSpecification")
    if (predefined is None) == (custom is None):
        raise ValidationException(
            f"{prefix}: give exactly one of PredefinedMetricSpecification and "
            "CustomizedMetricSpecification."
        )
    component = str(params.get("ResourceId", "")).startswith("inference-component/")
    kinds = sorted(COMPONENT_TYPES if component else set(PREDEFINED) - COMPONENT_TYPES)
    if predefined is not None and predefined["PredefinedMetricType"] not in kinds:
        raise ValidationException(
            f"{prefix}PredefinedMetricSpecification.PredefinedMetricType "
            f"{predefined['PredefinedMetricType']!r} is not one for SageMaker "
            f"{'inference components' if component else 'variants'}: use {' or '.join(kinds)}."
        )
    if custom is not None:
        where = f"{prefix}CustomizedMetricSpecification."
        if custom.get("Metrics"):
            raise ValidationException(f"{where}Metrics (metric math) is not served by Tandem yet.")
        for member in ("MetricName", "Namespace", "Statistic"):
            if not custom.get(member):
                raise ValidationException(f"{where}{member} is required.")
        dims = [{"Name": d["Name"], "Value": d["Value"]} for d in custom.get("Dimensions") or []]
        try:
            found = lookup.exists(custom["Namespace"], custom["MetricName"], dims)
        except CloudWatchError as exc:
            raise ValidationException(f"{where}Dimensions: {exc.message}") from None
        if not found:
            raise ValidationException(
                f"{where}MetricName: the metric {custom['Namespace']}/{custom['MetricName']} with "
                f"dimensions {dims} does not exist in the metric store (publish it first)."
            )
    return {"PolicyType": kind, "TargetTrackingScalingPolicyConfiguration": config}


def alarms(body: dict[str, Any], key: tuple[str, str, str], name: str, region: str,
           account: str) -> list[dict[str, str]]:  # fmt: skip
    """The two alarms a target-tracking policy stands for, named as AWS names them."""
    if body["PolicyType"] != "TargetTrackingScaling":
        return []
    tag = uuid.uuid4()
    out = []
    for side in ("AlarmHigh", "AlarmLow"):
        alarm = f"TargetTracking-{key[1]}-{side}-{tag}"
        arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"
        out.append({"AlarmName": alarm, "AlarmARN": arn})
    return out


def metric_of(body: dict[str, Any], endpoint: str, variant: str) -> Metric:
    config = body["TargetTrackingScalingPolicyConfiguration"]
    predefined = config.get("PredefinedMetricSpecification")
    if predefined is not None:
        name, stat, high, per_minute, stored = PREDEFINED[predefined["PredefinedMetricType"]]
        dims: tuple[tuple[str, str], ...] = (("EndpointName", endpoint), ("VariantName", variant))
        if predefined["PredefinedMetricType"] in COMPONENT_TYPES:
            dims = (("InferenceComponentName", variant),)
        return Metric("AWS/SageMaker", name, dims, stat, high, per_minute, True, stored)
    custom = config["CustomizedMetricSpecification"]
    pairs = tuple(sorted((d["Name"], d["Value"]) for d in custom.get("Dimensions") or []))
    return Metric(custom["Namespace"], custom["MetricName"], pairs, custom["Statistic"])


@dataclass(frozen=True)
class Proposal:
    capacity: int
    out: bool
    cause: str


def propose(
    body: dict[str, Any], metric: Metric, capacity: int, now: float, minute: int,
    lookup: MetricLookup, states: dict[str, tuple[str, float | None]] | None = None,
) -> Proposal | None:  # fmt: skip
    """What the policy's alarms ask for now (None: neither alarm is in ALARM); ``states``
    gets each alarm's state and the value it was judged on (``AlarmHigh``, ``AlarmLow``)."""
    config = body["TargetTrackingScalingPolicyConfiguration"]
    target = float(config["TargetValue"])
    period = max(_HIGH_RES[minute] if metric.high_resolution else minute, metric.resolution)
    end = int(now // period * period)  # complete datapoints only
    start = end - LOW_POINTS * period
    found = lookup.values(metric, period, start, end)
    scale = 60 / period if metric.per_minute else 1.0
    series: list[float | None] = []
    for ts in range(start, end, period):
        value = found.get(ts)
        if value is None and metric.missing_is_zero:
            value = 0.0
        series.append(None if value is None else value * scale)
    high, low = series[-HIGH_POINTS:], series
    if states is not None:
        states["AlarmHigh"] = _state(high, lambda v: v > target)
        states["AlarmLow"] = _state(low, lambda v: v < LOW_SHARE * target)
    names = [a["AlarmName"] for a in body.get("Alarms", [])]
    if all(v is not None and v > target for v in high):
        latest = float(high[-1] or 0.0)
        wanted = math.ceil(capacity * latest / target)
        name = next((n for n in names if "-AlarmHigh-" in n), "AlarmHigh")
        return Proposal(wanted, True, _cause(name, body["PolicyName"], latest, target, "above"))
    if all(v is not None and v < LOW_SHARE * target for v in low):
        peak = max(float(v or 0.0) for v in low)
        wanted = math.ceil(capacity * peak / target)
        name = next((n for n in names if "-AlarmLow-" in n), "AlarmLow")
        return Proposal(wanted, False, _cause(name, body["PolicyName"], peak, target, "below"))
    return None


def _state(
    points: list[float | None], breaching: Callable[[float], bool]
) -> tuple[str, float | None]:
    """An alarm over ``points``: ALARM when every one breaches, INSUFFICIENT_DATA when none is
    known, else OK; and the latest value known."""
    known = [v for v in points if v is not None]
    if not known:
        return "INSUFFICIENT_DATA", None
    alarm = len(known) == len(points) and all(breaching(v) for v in known)
    return ("ALARM" if alarm else "OK"), known[-1]


def _cause(alarm: str, policy: str, value: float, target: float, side: str) -> str:
    return (
        f"monitor alarm {alarm} in state ALARM triggered policy {policy} (the metric is {value:g}, "
        f"{side} the target of {target:g})"
    )


def cooldown(body: dict[str, Any], out: bool, minute: int) -> float:
    """The policy's cooldown for a scale-out or a scale-in, in seconds of this gateway's clock."""
    if body["PolicyType"] == "StepScaling":
        seconds = body["StepScalingPolicyConfiguration"].get("Cooldown", 0)
        return float(seconds) * minute / 60
    config = body["TargetTrackingScalingPolicyConfiguration"]
    seconds = config.get("ScaleOutCooldown" if out else "ScaleInCooldown", DEFAULT_COOLDOWN)
    return float(seconds) * minute / 60
