"""A ``DeploymentConfig``'s numbers: the traffic shares and batch sizes its steps move.

Shared by the control plane (which checks a policy against the fleet) and the lifecycle (which
runs its steps), below both; it reads the policy as the API gave it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

BLUE_GREEN = "BlueGreenUpdatePolicy"
ROLLING = "RollingUpdatePolicy"
ROUTING = "TrafficRoutingConfiguration"
#: Reads CloudWatch alarms by name (``AlarmStore.alarms``); those that exist come back.
AlarmReader = Callable[[list[str]], list[dict[str, Any]]]


def alarm_names(policy: Mapping[str, Any]) -> list[str]:
    """The alarms of ``AutoRollbackConfiguration``."""
    alarms = (policy.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [a["AlarmName"] for a in alarms if "AlarmName" in a]


def capacity(size: Mapping[str, Any], total: int) -> float:
    """A ``CapacitySize`` as a share of ``total`` instances."""
    if size["Type"] == "CAPACITY_PERCENT":
        return float(size["Value"]) / 100.0
    return float(size["Value"]) / max(total, 1)


def shares(policy: Mapping[str, Any], total: int) -> list[float]:
    """The share of the traffic on the new fleet after each blue/green step (the last is 1)."""
    routing = (policy.get(BLUE_GREEN) or {}).get(ROUTING) or {"Type": "ALL_AT_ONCE"}
    if routing["Type"] == "CANARY":
        return [min(capacity(routing["CanarySize"], total), 1.0), 1.0]
    if routing["Type"] == "LINEAR":
        step = capacity(routing["LinearStepSize"], total)
        count = max(math.ceil(1.0 / step - 1e-9), 1)
        return [min(step * (i + 1), 1.0) for i in range(count - 1)] + [1.0]
    return [1.0]


def batch(size: Mapping[str, Any] | None, count: int) -> int:
    """A rolling batch in instances (at least 1); no size is the whole variant."""
    if size is None:
        return count
    return max(1, min(count, math.floor(capacity(size, count) * count + 1e-9)))
