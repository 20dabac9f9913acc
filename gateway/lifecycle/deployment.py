"""Deployment guardrails: an update's traffic moved to the new fleet step by step, watched.

With a ``DeploymentConfig`` (``gateway.control.deployment_config`` checked it), once the new
fleet passes ``/ping`` the old fleet keeps the endpoint's name and hands a share of its requests
to the new one (``live.Shift``, drawn in ``invocation.choose_fleet``): ``CANARY`` moves the
canary then the rest, ``LINEAR`` equal steps, ``ALL_AT_ONCE`` everything; after each step a
baking period (``WaitIntervalInSeconds``), then ``TerminationWaitInSeconds``, with the
``AutoRollbackConfiguration`` alarms read all along. An alarm in ``ALARM`` or
``MaximumExecutionTimeoutInSeconds`` exceeded moves all traffic back to the old fleet at once (one
reference set to None); the caller then drains and stops the new fleet and leaves the endpoint
``InService`` on its old config, the reason named.

Each step is written to the state (``StateStore.set_rollout``) before traffic moves, so a gateway
killed in the middle finds where it was (``recover``): traffic partly shifted rolls back, traffic
wholly on the new fleet (the termination wait) completes; nothing ends half-way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from gateway.deployment_policy import BLUE_GREEN, ROUTING, AlarmReader, alarm_names, shares
from gateway.live import LiveEndpoint, Shift
from gateway.state import EndpointRecord, EndpointStatus, StateStore, WrongState

logger = logging.getLogger("tandem.deployment")

#: How often the alarms are read while baking: the bound on ALARM -> all traffic on the old fleet.
POLL = 0.1
#: The phases a rollout goes through, as written in the state.
CREATING, SHIFTING, TERMINATING = "Creating", "Shifting", "Terminating"


class Guardrails:
    """Runs the steps of guarded updates; counts alarm changes and rollbacks for ``/metrics``."""

    def __init__(
        self,
        store: StateStore,
        alarms: AlarmReader | None,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._alarms, self._clock = store, alarms, clock
        self.rollbacks = Counter(
            "tandem_deployment_rollbacks",
            "Updates rolled back by the guardrails (cause: alarm, timeout, restart)",
            ("endpoint", "cause"),
            registry=registry,
        )
        self.alarm_changes = Counter(
            "tandem_deployment_alarm_changes",
            "State changes of the alarms an update watches, as the update saw them",
            ("endpoint", "alarm", "state"),
            registry=registry,
        )

    async def run(self, record: EndpointRecord, old: LiveEndpoint, new: LiveEndpoint) -> str | None:
        """Shift ``record``'s traffic from ``old`` to ``new`` by its policy; None once all of
        it is on ``new`` and the termination wait passed, else why it moved back to ``old``
        (then no request goes to ``new`` any more). ``WrongState``: the update was ended
        elsewhere (the endpoint is being deleted); traffic is back on ``old``."""
        rollout = dict(record.rollout or {})
        policy = rollout.get("policy") or {}
        blue_green = policy.get(BLUE_GREEN) or {}
        wait = float((blue_green.get(ROUTING) or {}).get("WaitIntervalInSeconds", 0))
        watch = self.watch(record, blue_green.get("MaximumExecutionTimeoutInSeconds"))
        steps = shares(policy, sum(len(v.instances) for v in new.variants))
        stages: list[dict[str, Any]] = []
        try:
            for i, share in enumerate(steps, 1):
                where = f"step {i} of {len(steps)}, {split(share)}"
                self.write(record.name, rollout, stages, SHIFTING, share, "ActivatingTraffic",
                            f"Shifting traffic: {where}.")  # fmt: skip
                old.shift = Shift(share, new)
                logger.info("%s: %s", record.name, where)
                self.write(record.name, rollout, stages, SHIFTING, share, "Baking",
                            f"Baking for {wait:g} s: {where}; alarms watched.")  # fmt: skip
                reason = await watch.wait(wait, where)
                if reason is not None:
                    return self.rolled_back(record.name, old, reason, watch.cause)
            terminate = float(blue_green.get("TerminationWaitInSeconds", 0))
            self.write(record.name, rollout, stages, TERMINATING, 1.0, "Baking",
                        f"Termination wait of {terminate:g} s: {split(1.0)}; alarms "
                        "watched; the old fleet stops after it.")  # fmt: skip
            reason = await watch.wait(terminate, f"the termination wait, {split(1.0)}")
            if reason is not None:
                return self.rolled_back(record.name, old, reason, watch.cause)
        except BaseException:
            old.shift = None  # whatever ends the run, every new request goes to the old fleet
            raise
        return None

    def recover(self, record: EndpointRecord) -> str | None:
        """After a restart, an update whose traffic had begun to move: rolled back (its reason
        returned) or, all traffic already on the new fleet, completed (""); None when no
        traffic had moved (the update is then tried again from its start)."""
        rollout = record.rollout or {}
        phase = rollout.get("phase", CREATING)
        if phase == CREATING:
            return None
        if phase == TERMINATING:
            logger.info("%s: restarted in the termination wait: the update completes", record.name)
            self._store.finish_update(record.name)
            return ""
        reason = (
            f"The gateway stopped while the update to {record.pending_config} shifted traffic "
            f"({split(float(rollout.get('share', 0.0)))}); all traffic is back on "
            f"{record.config}."
        )
        logger.warning("%s: %s", record.name, reason)
        self.rollbacks.labels(record.name, "restart").inc()
        self._store.rollback_update(record.name, reason)
        return reason

    def watch(self, record: EndpointRecord, limit: float | None) -> _Watch:
        """The alarms of ``record``'s update and its deadline (``limit`` s from its start)."""
        names = alarm_names((record.rollout or {}).get("policy") or {})
        deadline = (record.update_started or self._clock()) + limit if limit else float("inf")
        return _Watch(self, record.name, names, deadline)

    def still_updating(self, name: str) -> None:
        """``WrongState`` once the update has ended elsewhere (``DeleteEndpoint`` while it
        bakes): the bake stops at once rather than at its end."""
        record = self._store.get_endpoint(name)
        if record is None or record.status is not EndpointStatus.UPDATING:
            raise WrongState("endpoint", name, record.status if record else "gone")

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        if not names or self._alarms is None:
            return {}
        return {
            a["AlarmName"]: a.get("StateValue", "INSUFFICIENT_DATA") for a in self._alarms(names)
        }

    def rolled_back(self, name: str, old: LiveEndpoint, reason: str, cause: str) -> str:
        """All traffic back on ``old``, at once; counted and logged; ``reason`` returned."""
        old.shift = None  # all traffic back on the old fleet, at once
        logger.warning("%s: rolled back: %s", name, reason)
        self.rollbacks.labels(name, cause).inc()
        return reason

    def write(
        self,
        name: str,
        rollout: dict[str, Any],
        stages: list[dict[str, Any]],
        phase: str,
        share: float,
        status: str,
        message: str,
    ) -> None:
        """A step, in the state before the traffic moves (``WrongState``: the update ended)."""
        stages.append({"Status": status, "StatusMessage": message, "StartTime": self._clock()})
        rollout.update(phase=phase, share=share, stages=stages[-4:])
        self._store.set_rollout(name, rollout)


class _Watch:
    """The alarms and the deadline of one update, read every ``POLL`` seconds."""

    def __init__(self, owner: Guardrails, endpoint: str, names: list[str], deadline: float) -> None:
        self.owner, self.endpoint, self.names, self.deadline = owner, endpoint, names, deadline
        self.seen: dict[str, str] = {}
        self.cause = ""

    async def wait(self, seconds: float, where: str) -> str | None:
        end = time.monotonic() + seconds
        while True:
            reason = await asyncio.to_thread(self._check, where)
            if reason is not None or time.monotonic() >= end:
                return reason
            await asyncio.sleep(min(POLL, max(end - time.monotonic(), 0.0)))

    def _check(self, where: str) -> str | None:
        self.owner.still_updating(self.endpoint)
        states = self.owner.alarm_states(self.names)
        for alarm, state in states.items():
            if self.seen.get(alarm) != state:
                logger.info("%s: alarm %s is %s (%s)", self.endpoint, alarm, state, where)
                self.owner.alarm_changes.labels(self.endpoint, alarm, state).inc()
                self.seen[alarm] = state
        firing = [a for a in self.names if states.get(a) == "ALARM"]
        if firing:
            self.cause = "alarm"
            return (
                f"Alarm {', '.join(firing)} went into ALARM during {where}: all traffic moved "
                "back to the old fleet, the update was rolled back."
            )
        if self.owner._clock() > self.deadline:
            self.cause = "timeout"
            return (
                f"The update exceeded its MaximumExecutionTimeoutInSeconds during {where}: all "
                "traffic moved back to the old fleet, the update was rolled back."
            )
        return None


def split(share: float) -> str:
    return f"{share:.0%} of the traffic on the new fleet, {1 - share:.0%} on the old"
