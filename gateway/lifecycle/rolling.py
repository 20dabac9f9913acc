"""``RollingUpdatePolicy``: an update that replaces the instances in batches, for a host with no
room for a second whole fleet.

The new fleet starts with one batch (``MaximumBatchSize``) beside the old one; the traffic is
shared by capacity (new instances over all instances, the same ``live.Shift`` as blue/green),
baked for ``WaitIntervalInSeconds`` with the alarms watched; then a batch of old instances is
drained and stopped and a batch of new ones started, until the new fleet is whole and baked. An
alarm (or ``MaximumExecutionTimeoutInSeconds``) sends all traffic to the old instances still
running at once, brings the old fleet back to its size in batches of
``RollbackMaximumBatchSize`` (all at once without it), and the caller stops the new fleet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.deployment_policy import ROLLING, batch
from gateway.lifecycle.deployment import SHIFTING, Guardrails, split
from gateway.lifecycle.fleet import Deployment
from gateway.live import Shift, Variant
from gateway.state import EndpointRecord
from pipelines.spec import EndpointSpec

logger = logging.getLogger("tandem.deployment")

#: Changes one variant of a deployment to so many instances (``Reconciler._scale``).
Scale = Callable[[Deployment, Variant, int], Awaitable[None]]


def first_batch(record: EndpointRecord | None, spec: EndpointSpec) -> dict[str, int] | None:
    """The instances a rolling update starts its new fleet with; None for other updates."""
    policy = ((record.rollout or {}) if record is not None else {}).get("policy") or {}
    rolling = policy.get(ROLLING)
    if not rolling:
        return None
    return {
        v.variant: batch(rolling["MaximumBatchSize"], v.instance_count) for v in spec.production()
    }


async def roll(
    guardrails: Guardrails,
    record: EndpointRecord,
    old: Deployment,
    new: Deployment,
    scale: Scale,
) -> str | None:
    """Replace ``old``'s instances by ``new``'s in batches; None once done (the caller makes
    ``new`` the endpoint), else why it rolled back (``old`` whole again, no traffic to ``new``)."""
    rolling = (record.rollout or {})["policy"][ROLLING]
    rollout: dict[str, Any] = dict(record.rollout or {})
    stages: list[dict[str, Any]] = []
    (was,) = old.runtime.variants
    (now,) = new.runtime.variants
    size, target = len(was.instances), now.spec.instance_count
    step = batch(rolling["MaximumBatchSize"], target)
    wait = float(rolling["WaitIntervalInSeconds"])
    watch = guardrails.watch(record, rolling.get("MaximumExecutionTimeoutInSeconds"))

    def shift(share: float, status: str, message: str) -> None:
        guardrails.write(record.name, rollout, stages, SHIFTING, share, status, message)
        old.runtime.shift = Shift(share, new.runtime)

    try:
        while True:
            have, left = len(now.instances), len(was.instances)
            share = have / (have + left)
            where = f"{have} of {target} new instance(s) up, {left} old; {split(share)}"
            shift(share, "Baking", f"Baking for {wait:g} s: {where}; alarms watched.")
            logger.info("%s: rolling: %s", record.name, where)
            reason = await watch.wait(wait, where)
            if reason is not None:
                await _back(guardrails, record, old, was, size, rolling, scale)
                return guardrails.rolled_back(record.name, old.runtime, reason, watch.cause)
            if have >= target:
                return None
            retire, grow = min(step, left), min(step, target - have)
            after = split(have / (have + left - retire)) if left > retire else split(1.0)
            shift(have / (have + left - retire) if left > retire else 1.0, "Updating",
                  f"Replacing {retire} old instance(s) by {grow} new: {after}.")  # fmt: skip
            await scale(old, was, left - retire)
            await scale(new, now, have + grow)
    except BaseException:
        if was.instances:
            old.runtime.shift = None
        raise


async def _back(
    guardrails: Guardrails,
    record: EndpointRecord,
    old: Deployment,
    was: Variant,
    size: int,
    rolling: dict[str, Any],
    scale: Scale,
) -> None:
    """The old fleet takes all traffic at once (after a first batch if none of it is left),
    then grows back to ``size`` instances in batches of ``RollbackMaximumBatchSize``."""
    step = batch(rolling.get("RollbackMaximumBatchSize"), size)
    if not was.instances:
        await scale(old, was, min(step, size))
    old.runtime.shift = None
    while len(was.instances) < size:
        await scale(old, was, min(len(was.instances) + step, size))
    logger.info("%s: rolling back: the old fleet has its %d instance(s) again", record.name, size)
