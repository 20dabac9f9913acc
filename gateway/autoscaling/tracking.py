"""The two CloudWatch alarms AWS makes for each target-tracking policy, as DescribeAlarms shows
them: ``TargetTracking-<resource>-AlarmHigh-<id>`` (3 datapoints above the target) and
``…-AlarmLow-…`` (15 below 90 % of it), named in the policy's ``Alarms``.

They are not stored: the evaluator judges the policy's own series each time it looks
(``policies.propose``) and records here what each alarm's state is, so that what DescribeAlarms
says and what the evaluator does never disagree. Their bodies are made from the policy on each
read; deleting the policy removes them. A gateway that restarts shows them
``INSUFFICIENT_DATA`` until its first evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.autoscaling import checks, policies
from gateway.autoscaling.store import ScalingStore

#: An alarm's periods to ALARM and the share of the target it compares with, per side.
SIDES = {
    "AlarmHigh": (policies.HIGH_POINTS, 1.0, "GreaterThanThreshold"),
    "AlarmLow": (policies.LOW_POINTS, policies.LOW_SHARE, "LessThanThreshold"),
}


class TrackingAlarms:
    def __init__(self, store: ScalingStore, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock = store, clock
        #: Alarm name -> what the evaluator last saw (state, reason, times, value).
        self._seen: dict[str, dict[str, Any]] = {}

    def record(self, body: dict[str, Any], states: dict[str, tuple[str, float | None]]) -> None:
        """The evaluator judged ``body``'s series: its alarms' states now."""
        now = self.clock()
        target = float(body["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        for alarm in body.get("Alarms") or []:
            side = _side(alarm["AlarmName"])
            if side not in states:
                continue
            state, value = states[side]
            old = self._seen.get(alarm["AlarmName"], {})
            points, share, _ = SIDES[side]
            threshold = share * target
            reason = (
                f"Threshold Crossed: the last {points} datapoints were "
                f"{'' if state == 'ALARM' else 'not all '}"
                f"{'above' if side == 'AlarmHigh' else 'below'} the threshold ({threshold:g})."
                if value is not None else "Insufficient Data: no datapoint was found."
            )  # fmt: skip
            self._seen[alarm["AlarmName"]] = {
                "StateValue": state, "StateReason": reason, "StateUpdatedTimestamp": now,
                "StateTransitionedTimestamp": (
                    old.get("StateTransitionedTimestamp", now)
                    if old.get("StateValue") == state else now
                ),
                "LastValue": value,
            }  # fmt: skip

    def alarms(self) -> list[dict[str, Any]]:
        """Every target-tracking policy's two alarms, as ``PutMetricAlarm`` would store them."""
        out = []
        for body, _ in self.store.list("policy"):
            if body["PolicyType"] != "TargetTrackingScaling":
                continue
            endpoint, variant = checks.endpoint_of(body["ResourceId"])
            metric = policies.metric_of(body, endpoint, variant)
            target = float(body["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
            for alarm in body.get("Alarms") or []:
                points, share, operator = SIDES[_side(alarm["AlarmName"])]
                seen = self._seen.get(alarm["AlarmName"]) or {
                    "StateValue": "INSUFFICIENT_DATA",
                    "StateReason": "Unchecked: Initial alarm creation",
                    "StateUpdatedTimestamp": body["CreationTime"],
                    "StateTransitionedTimestamp": body["CreationTime"],
                }
                out.append({
                    "AlarmName": alarm["AlarmName"], "AlarmArn": alarm["AlarmARN"],
                    "AlarmDescription": "DO NOT EDIT OR DELETE. For TargetTrackingScaling "
                                        f"policy {body['PolicyARN']}.",
                    "ActionsEnabled": True, "AlarmActions": [body["PolicyARN"]],
                    "OKActions": [], "InsufficientDataActions": [],
                    "AlarmConfigurationUpdatedTimestamp": body["CreationTime"],
                    "MetricName": metric.name, "Namespace": metric.namespace,
                    "Statistic": metric.statistic,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dims],
                    "Period": 10 if metric.high_resolution else 60,
                    "EvaluationPeriods": points, "DatapointsToAlarm": points,
                    "Threshold": share * target, "ComparisonOperator": operator,
                    "TreatMissingData": "missing", **seen,
                })  # fmt: skip
        return sorted(out, key=lambda a: str(a["AlarmName"]))


def _side(name: str) -> str:
    return "AlarmHigh" if "-AlarmHigh-" in name else "AlarmLow"
