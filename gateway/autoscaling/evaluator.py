"""The background task that scales: every ``interval`` seconds, each scalable target's
scheduled actions, bounds and policies are evaluated and a decision becomes an activity.
The looks are aligned on the wall clock (``gateway.periodic``): with the default 10 s, each
comes just after a ten-second period (and so every minute) closes, so the datapoint that
completes an alarm's run is judged at once rather than up to an interval later.

A decision is carried out by the control plane's ``UpdateEndpointWeightsAndCapacities`` (the
same call a user makes: new instances pass ``/ping`` before they take traffic, removed ones
drain). Its activity is ``InProgress`` until DescribeEndpoint shows the variant at that count
(``Successful``), or ``Failed`` with the reason (the call refused, the update rolled back). A
target whose endpoint is not ``InService`` waits: its alarms stay in ALARM and fire again.

A variant at zero instances that holds requests (or whose asynchronous queue is not empty) is
woken at once (``on_wanted``, told by the serving side's ``Held``) to ``max(1, MinCapacity)``,
without waiting for an evaluation or a policy; nothing scales a variant to zero while it does.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from gateway.autoscaling import checks, policies, steps
from gateway.autoscaling.api import ScalingApi
from gateway.autoscaling.schedule import ScheduleError, parse
from gateway.autoscaling.store import Key
from gateway.autoscaling.tracking import TrackingAlarms
from gateway.errors import ApiError
from gateway.periodic import cancel, every

log = logging.getLogger("tandem.autoscaling")

#: Activities kept per scalable target (the oldest go first).
KEEP_ACTIVITIES = 1000
#: Seconds between two looks at a variant at zero being woken (it waits for an update to end).
WAKE_POLL = 0.1

#: Whether a variant (its resource id) wanted capacity in the last so many seconds.
Wanted = Callable[[str, float], bool]


class Evaluator:
    def __init__(
        self, api: ScalingApi, *, interval: float, minute: int,
        clock: Callable[[], float] = time.time, wanted: Wanted | None = None,
    ) -> None:  # fmt: skip
        """``wanted(resource, within)``: whether a variant at zero held a request or had a
        queued one in the last ``within`` seconds (``gateway.serving.held.Held.wanted``)."""
        self.api, self.store = api, api.store
        self.interval, self.minute, self.clock = interval, minute, clock
        self.wanted: Wanted = wanted or (lambda _resource, _within: False)
        self._task: asyncio.Task[None] | None = None
        #: One decision at a time: the periodic evaluation and alarm actions take turns.
        self._deciding = asyncio.Lock()
        #: The target-tracking policies' alarms, as DescribeAlarms shows them.
        self.tracking = TrackingAlarms(api.store, clock)
        #: Variants at zero being woken now, by resource id.
        self._waking: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        if self._task is None:
            loop = every(
                self.interval, self.tick, log, "autoscaling evaluation failed", aligned=True
            )
            self._task = asyncio.create_task(loop, name="autoscaling-evaluator")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        for waking in list(self._waking.values()):
            await cancel(waking)

    def on_wanted(self, resource: str, _request: bool = True) -> None:
        """A variant wants capacity (a request held, a queue at zero): wake it now rather
        than at the next evaluation (``Held``'s listener)."""
        if self._task is None or resource in self._waking:
            return
        if not resource.startswith(("endpoint/", checks.COMPONENT_PREFIX)):
            return
        task = asyncio.get_running_loop().create_task(self._wake(resource))
        self._waking[resource] = task
        task.add_done_callback(lambda _done: self._waking.pop(resource, None))

    async def _wake(self, resource: str) -> None:
        """Evaluate the variant's target until it has an instance or wants none any more (an
        endpoint still updating, a scale-in to zero draining, waits its turn)."""
        dimension = (
            checks.COMPONENT_DIMENSION if checks.is_component(resource) else checks.DIMENSION
        )
        key = (checks.NAMESPACE, resource, dimension)
        while self.wanted(resource, self._window):
            found = await asyncio.to_thread(self.store.get, "target", key)
            if found is None:
                return  # not a scalable target: nothing starts it (its requests time out)
            try:
                async with self._deciding:
                    desired = await self._target(key, *found)
            except Exception:
                log.exception("waking %s failed", resource)
                return
            if desired is not None and desired > 0:
                return
            await asyncio.sleep(WAKE_POLL)

    @property
    def _window(self) -> float:
        """How recent a want must be to count: a few of the asynchronous queue's polls."""
        return max(3.0, 2 * self.interval)

    async def tick(self) -> None:
        """Evaluate every scalable target once."""
        for target, state in await asyncio.to_thread(self.store.list, "target"):
            key = (target["ServiceNamespace"], target["ResourceId"], target["ScalableDimension"])
            try:
                async with self._deciding:
                    await self._target(key, target, state)
            except Exception:
                log.exception("autoscaling evaluation of %s failed", key[1])

    async def _target(self, key: Key, target: dict[str, Any], state: dict[str, Any]) -> int | None:
        """Decide for one target; the desired count it is left at (None: no such variant)."""
        endpoint, variant = checks.endpoint_of(key[1])
        described = await asyncio.to_thread(self.api.describe_endpoint, endpoint)
        if described is None:
            return None
        found = [
            v for v in described.get("ProductionVariants") or [] if v["VariantName"] == variant
        ]
        if not found:
            return None
        desired, current = found[0]["DesiredInstanceCount"], found[0]["CurrentInstanceCount"]
        status = described["EndpointStatus"]
        state = await asyncio.to_thread(self._settle, key, state, status, current, described)
        if status != "InService" or state.get("pending"):
            return int(desired)
        now = self.clock()
        suspended = target.get("SuspendedState", {})
        if not suspended.get("ScheduledScalingSuspended"):
            target = await asyncio.to_thread(self._scheduled, key, target, now)
        low, high = target["MinCapacity"], target["MaxCapacity"]
        wanted = self.wanted(key[1], self._window)
        decision: policies.Proposal | None = None
        if desired < low:
            decision = policies.Proposal(low, True, f"minimum capacity was set to {low}")
        elif desired > high:
            decision = policies.Proposal(high, False, f"maximum capacity was set to {high}")
        elif desired == 0 and wanted and not suspended.get("DynamicScalingOutSuspended"):
            decision = policies.Proposal(
                max(1, low), True, f"variant {variant} has no instance and requests wait for one "
                "(NoCapacityInvocationFailures, HasBacklogWithoutCapacity)",
            )  # fmt: skip
        else:
            decision = await asyncio.to_thread(self._policies, key, desired, state, now, suspended)
        if decision is None:
            return int(desired)
        capacity = min(max(decision.capacity, low), high)
        if capacity == desired or (capacity == 0 and wanted):
            return int(desired)  # never to zero while requests wait
        await self._scale(key, capacity, decision, state, now)
        return capacity

    def _policies(
        self, key: Key, capacity: int, state: dict[str, Any], now: float,
        suspended: dict[str, bool],
    ) -> policies.Proposal | None:  # fmt: skip
        """Scale out if any policy asks (the largest wins); in only if every one asks."""
        endpoint, variant = checks.endpoint_of(key[1])
        outs, ins, quiet = [], [], False
        for body, _ in self.store.list("policy", key[0], resource=key[1], dimension=key[2]):
            if body["PolicyType"] != "TargetTrackingScaling":
                continue  # step policies act when their alarm does (on_alarm)
            metric = policies.metric_of(body, endpoint, variant)
            states: dict[str, tuple[str, float | None]] = {}
            proposal = policies.propose(
                body, metric, capacity, now, self.minute, self.api.metrics, states
            )
            self.tracking.record(body, states)
            if proposal is None or proposal.capacity == capacity:
                quiet = True
                continue
            since = now - max(
                state.get("last_out", 0.0), 0.0 if proposal.out else state.get("last_in", 0.0)
            )
            if since < policies.cooldown(body, proposal.out, self.minute):
                quiet = quiet or not proposal.out
                continue
            config = body["TargetTrackingScalingPolicyConfiguration"]
            if proposal.out and proposal.capacity > capacity:
                outs.append(proposal)
            elif not proposal.out and not config.get("DisableScaleIn"):
                ins.append(proposal)
            else:
                quiet = True
        if outs and not suspended.get("DynamicScalingOutSuspended"):
            return max(outs, key=lambda p: p.capacity)
        if ins and not quiet and not outs and not suspended.get("DynamicScalingInSuspended"):
            return max(ins, key=lambda p: p.capacity)
        return None

    async def on_alarm(self, alarm: dict[str, Any], value: float | None) -> None:
        """An alarm in ALARM invokes the step policies its ``AlarmActions`` name."""
        arns = set(alarm.get("AlarmActions") or [])
        found = await asyncio.to_thread(self.store.list, "policy")
        for body, _ in found:
            if body["PolicyARN"] not in arns or body["PolicyType"] != "StepScaling":
                continue
            key = (body["ServiceNamespace"], body["ResourceId"], body["ScalableDimension"])
            target = await asyncio.to_thread(self.store.get, "target", key)
            if target is None:
                continue
            async with self._deciding:
                await self._step(key, target, body, alarm, value)

    async def _step(
        self, key: Key, target: tuple[dict[str, Any], dict[str, Any]], body: dict[str, Any],
        alarm: dict[str, Any], value: float | None,
    ) -> None:  # fmt: skip
        (bounds, state), now = target, self.clock()
        described = await asyncio.to_thread(
            self.api.describe_endpoint, checks.endpoint_of(key[1])[0]
        )
        variant = checks.endpoint_of(key[1])[1]
        found = [v for v in (described or {}).get("ProductionVariants") or []
                 if v["VariantName"] == variant]  # fmt: skip
        if not found or described is None or described["EndpointStatus"] != "InService":
            return
        if state.get("pending"):
            return  # the last change is still being made
        desired = found[0]["DesiredInstanceCount"]
        breach = (value if value is not None else float(alarm["Threshold"])) - float(
            alarm["Threshold"]
        )
        wanted = steps.adjust(body, desired, breach)
        if wanted is None or wanted == desired:
            return
        out = wanted > desired
        suspended = bounds.get("SuspendedState", {})
        if suspended.get("DynamicScalingOutSuspended" if out else "DynamicScalingInSuspended"):
            return
        if now - state.get(f"step:{body['PolicyName']}", 0.0) < policies.cooldown(
            body, out, self.minute
        ):
            return
        capacity = min(max(wanted, bounds["MinCapacity"]), bounds["MaxCapacity"])
        if capacity == desired or (capacity == 0 and self.wanted(key[1], self._window)):
            return
        cause = (f"monitor alarm {alarm['AlarmName']} in state ALARM triggered policy "
                 f"{body['PolicyName']}")  # fmt: skip
        state = {**state, f"step:{body['PolicyName']}": now}
        await self._scale(key, capacity, policies.Proposal(capacity, out, cause), state, now)

    def _scheduled(self, key: Key, target: dict[str, Any], now: float) -> dict[str, Any]:
        """Run the scheduled actions that are due: each sets the target's bounds."""
        for body, state in self.store.list("scheduled", key[0], resource=key[1], dimension=key[2]):
            if body.get("EndTime") and now > body["EndTime"]:
                continue
            try:
                schedule = parse(body["Schedule"], body.get("Timezone"))
            except ScheduleError:
                continue
            start = body.get("StartTime") or body["CreationTime"]
            when = schedule.next_run(state.get("last", start - 1), start)
            if when is None or when > now:
                continue
            action = body.get("ScalableTargetAction") or {}
            target = {**target, **{k: v for k, v in action.items() if v is not None}}
            if target["MinCapacity"] > target["MaxCapacity"]:
                bound = "MinCapacity" if "MinCapacity" in action else "MaxCapacity"
                other = "MaxCapacity" if bound == "MinCapacity" else "MinCapacity"
                target[other] = target[bound]
            self.store.put("target", key, "", checks.endpoint_of(key[1])[0], target)
            self.store.set_state("scheduled", key, body["ScheduledActionName"], {"last": now})
            self._activity(
                key, f"Setting min capacity to {target['MinCapacity']} and max capacity to "
                f"{target['MaxCapacity']}",
                f"scheduled action name {body['ScheduledActionName']} was triggered", "Successful",
                now, end=now,
            )  # fmt: skip
        return target

    async def _scale(
        self, key: Key, capacity: int, decision: policies.Proposal, state: dict[str, Any],
        now: float,
    ) -> None:  # fmt: skip
        endpoint, variant = checks.endpoint_of(key[1])
        what = "copy" if checks.is_component(key[1]) else "instance"
        activity = await asyncio.to_thread(
            self._activity, key, f"Setting desired {what} count to {capacity}.",
            decision.cause, "InProgress", now, capacity=capacity,
        )  # fmt: skip
        change: dict[str, Any]
        operation, change = "UpdateEndpointWeightsAndCapacities", {
            "EndpointName": endpoint,
            "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "DesiredInstanceCount": capacity}],
        }  # fmt: skip
        if checks.is_component(key[1]):
            operation, change = (
                "UpdateInferenceComponentRuntimeConfig",
                {
                    "InferenceComponentName": variant,
                    "DesiredRuntimeConfig": {"CopyCount": capacity},
                },
            )
        try:
            await self.api.control.acall(operation, change)
        except ApiError as exc:
            await asyncio.to_thread(self._finish, key, activity, "Failed", exc.message)
            return
        mark = {**state, ("last_out" if decision.out else "last_in"): now, "pending": activity}
        await asyncio.to_thread(self.store.set_state, "target", key, "", mark)
        log.info("%s: %s (%s)", key[1], f"desired instance count {capacity}", decision.cause)

    def _activity(
        self, key: Key, description: str, cause: str, status: str, now: float,
        end: float | None = None, capacity: int | None = None,
    ) -> str:  # fmt: skip
        activity = str(uuid.uuid4())
        body: dict[str, Any] = {
            "ActivityId": activity, "ServiceNamespace": key[0], "ResourceId": key[1],
            "ScalableDimension": key[2], "Description": description,
            "Cause": f"At {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))} {cause}.",
            "StartTime": now, "StatusCode": status,
            "StatusMessage": "Successfully set min/max capacity." if status == "Successful" else "",
        }  # fmt: skip
        if end is not None:
            body["EndTime"] = end
        state = {} if capacity is None else {"capacity": capacity}
        self.store.put("activity", key, activity, checks.endpoint_of(key[1])[0], body, state)
        self.store.prune("activity", key, KEEP_ACTIVITIES)
        return activity

    def _finish(self, key: Key, activity: str, status: str, message: str) -> None:
        row = self.store.get("activity", key, activity)
        if row is None:
            return
        body = {**row[0], "StatusCode": status, "StatusMessage": message, "EndTime": self.clock()}
        self.store.put("activity", key, activity, checks.endpoint_of(key[1])[0], body)

    def _settle(
        self, key: Key, state: dict[str, Any], status: str, current: int,
        described: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        """Close the target's pending activity once the change is over; the target's state."""
        row = self.store.get("activity", key, state["pending"]) if state.get("pending") else None
        if row is None:
            return {k: v for k, v in state.items() if k != "pending"}
        capacity = row[1].get("capacity")
        if status == "InService" and current == capacity:
            self._finish(key, state["pending"], "Successful",
                         f"Successfully set desired instance count to {capacity}. Change "
                         "successfully fulfilled by sagemaker.")  # fmt: skip
        elif status in ("InService", "Failed"):
            reason = described.get("FailureReason") or (
                f"the variant runs {current} instances, not {capacity}"
            )
            message = f"Failed to set desired instance count to {capacity}: {reason}"
            self._finish(key, state["pending"], "Failed", message)
        else:
            return state
        settled = {k: v for k, v in state.items() if k != "pending"}
        self.store.set_state("target", key, "", settled)
        return settled
