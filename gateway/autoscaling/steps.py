"""Step scaling: a CloudWatch alarm in ALARM invokes the policy (its ``AlarmActions`` name the
policy's ARN), and the step whose interval holds the breach (the metric minus the alarm's
threshold) sets the change, as Application Auto Scaling documents: ``ChangeInCapacity``,
``ExactCapacity`` or ``PercentChangeInCapacity`` (with ``MinAdjustmentMagnitude``)."""

from __future__ import annotations

import itertools
import math
from typing import Any

from gateway.autoscaling.errors import ValidationException

_WHERE = "StepScalingPolicyConfiguration."


def check(params: dict[str, Any]) -> dict[str, Any]:
    config = params.get("StepScalingPolicyConfiguration")
    if config is None:
        raise ValidationException(
            "StepScalingPolicyConfiguration is required for a StepScaling policy."
        )
    if params.get("TargetTrackingScalingPolicyConfiguration") is not None:
        raise ValidationException(
            "TargetTrackingScalingPolicyConfiguration must not be given with a StepScaling policy."
        )
    if not config.get("AdjustmentType"):
        raise ValidationException(f"{_WHERE}AdjustmentType is required.")
    steps = config.get("StepAdjustments") or []
    if not steps:
        raise ValidationException(f"{_WHERE}StepAdjustments must hold at least one step.")
    spans = sorted((_low(s), _high(s)) for s in steps)
    for low, high in spans:
        if low >= high:
            raise ValidationException(
                f"{_WHERE}StepAdjustments: a step's MetricIntervalLowerBound must be below its "
                "MetricIntervalUpperBound."
            )
    for (_, high), (low, _) in itertools.pairwise(spans):
        if low < high:
            raise ValidationException(f"{_WHERE}StepAdjustments: the steps' intervals overlap.")
    if config.get("MinAdjustmentMagnitude") is not None and (
        config["AdjustmentType"] != "PercentChangeInCapacity"
    ):
        raise ValidationException(
            f"{_WHERE}MinAdjustmentMagnitude is only for AdjustmentType PercentChangeInCapacity."
        )
    if config.get("Cooldown", 0) < 0:
        raise ValidationException(f"{_WHERE}Cooldown must not be negative.")
    return {"PolicyType": "StepScaling", "StepScalingPolicyConfiguration": config}


def adjust(body: dict[str, Any], capacity: int, breach: float) -> int | None:
    """The capacity the step holding ``breach`` asks for; None if no step holds it."""
    config = body["StepScalingPolicyConfiguration"]
    for step in config["StepAdjustments"]:
        low, high = _low(step), _high(step)
        inside = low <= breach < high if breach >= 0 else low < breach <= high
        if not inside:
            continue
        change = step["ScalingAdjustment"]
        kind = config["AdjustmentType"]
        if kind == "ExactCapacity":
            return int(change)
        if kind == "ChangeInCapacity":
            return capacity + int(change)
        delta = capacity * change / 100
        delta = (
            math.floor(delta)
            if delta > 1
            else math.ceil(delta)
            if delta < -1
            else (1 if delta > 0 else -1 if delta < 0 else 0)
        )
        least = config.get("MinAdjustmentMagnitude") or 0
        if abs(delta) < least:
            delta = least if delta > 0 else -least
        return capacity + delta
    return None


def _low(step: dict[str, Any]) -> float:
    low = step.get("MetricIntervalLowerBound")
    return -math.inf if low is None else float(low)


def _high(step: dict[str, Any]) -> float:
    high = step.get("MetricIntervalUpperBound")
    return math.inf if high is None else float(high)
