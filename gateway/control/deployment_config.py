"""``DeploymentConfig`` (deployment guardrails): checked against the fleet it will move.

botocore's model (``shapes``) has already checked the types, the enums and the bounds (wait
intervals 0..3600 s, the execution timeout 600..28800 s, sizes of at least 1); what is checked
here needs the endpoint: a canary of at most half the fleet, linear steps of 10-50% of it, rolling
batches of 5-50% of one variant's instances, the alarms that must exist. What runs the steps is
``gateway.lifecycle.deployment``, with the shares ``gateway.deployment_policy`` computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.deployment_policy import (
    BLUE_GREEN,
    ROLLING,
    ROUTING,
    AlarmReader,
    alarm_names,
    capacity,
)
from gateway.errors import ValidationException


def fleet(request: Mapping[str, Any]) -> dict[str, int]:
    """Instances per production variant of an endpoint config's request."""
    return {
        v["VariantName"]: int(v.get("InitialInstanceCount", 1))
        for v in request.get("ProductionVariants") or []
    }


def check(
    policy: Mapping[str, Any],
    config: Mapping[str, Any],
    alarms: AlarmReader | None,
    *,
    serving: Mapping[str, Any] | None = None,
) -> None:
    """``ValidationException`` naming what is wrong with ``policy`` for an endpoint that would
    run ``config`` (and runs ``serving`` now, for an update)."""
    blue_green, rolling = policy.get(BLUE_GREEN), policy.get(ROLLING)
    if blue_green and rolling:
        raise ValidationException(
            "deploymentConfig: give BlueGreenUpdatePolicy or RollingUpdatePolicy, not both."
        )
    new = fleet(config)
    total = sum(new.values()) or 1
    if blue_green:
        routing = blue_green[ROUTING]
        kind = routing["Type"]
        at = "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
        for member, wanted in (("CanarySize", "CANARY"), ("LinearStepSize", "LINEAR")):
            if member in routing and kind != wanted:
                raise ValidationException(f"{at}.{_camel(member)}: only for Type {wanted}.")
            if kind == wanted and member not in routing:
                raise ValidationException(f"{at}: Type {wanted} needs {member}.")
        if kind == "CANARY":
            share = capacity(routing["CanarySize"], total)
            if share > 0.5:
                raise ValidationException(
                    f"{at}.canarySize: {_shown(routing['CanarySize'])} is "
                    f"{share:.0%} of the {total} instance(s) of the new fleet; a canary is at "
                    "most 50% of it."
                )
        if kind == "LINEAR":
            share = capacity(routing["LinearStepSize"], total)
            if not 0.1 <= share <= 0.5:
                raise ValidationException(
                    f"{at}.linearStepSize: {_shown(routing['LinearStepSize'])} is "
                    f"{share:.0%} of the {total} instance(s) of the new fleet; a linear step is "
                    "10-50% of it."
                )
    if rolling:
        at = "deploymentConfig.rollingUpdatePolicy"
        for request in (config, serving or {}):
            variants = [*(request.get("ProductionVariants") or [])]
            if len(variants) > 1 or request.get("ShadowProductionVariants"):
                raise ValidationException(
                    f"{at}: a rolling update is for an endpoint of one production variant and no "
                    f"shadow variant; this one has {len(variants)} production variant(s)"
                    f"{' and shadows' if request.get('ShadowProductionVariants') else ''}."
                )
        count = min(new.values() or [1])
        share = capacity(rolling["MaximumBatchSize"], count)
        if not 0.05 <= share <= 0.5:
            raise ValidationException(
                f"{at}.maximumBatchSize: {_shown(rolling['MaximumBatchSize'])} is {share:.0%} "
                f"of the variant's {count} instance(s); a batch is 5-50% of it."
            )
    names = alarm_names(policy)
    if names:
        have = {a["AlarmName"] for a in alarms(names)} if alarms is not None else set()
        missing = [n for n in names if n not in have]
        if missing:
            raise ValidationException(
                "deploymentConfig.autoRollbackConfiguration.alarms: no CloudWatch alarm named "
                f"{', '.join(missing)} exists (create it with PutMetricAlarm first)."
            )


def _shown(size: Mapping[str, Any]) -> str:
    unit = "%" if size["Type"] == "CAPACITY_PERCENT" else " instance(s)"
    return f"{size['Value']}{unit}"


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]
