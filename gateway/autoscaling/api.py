"""Application Auto Scaling's operations over the scaling store: inputs and outputs as dicts.

Every operation checks its whole input (``checks``) and the endpoint and variant it names (the
control plane's ``DescribeEndpoint``) before its one transaction, so a refused call stores
nothing. Policies are checked in ``policies``, schedules in ``schedule``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from gateway.autoscaling import checks, policies
from gateway.autoscaling.errors import (
    AutoScalingError,
    LimitExceededException,
    ObjectNotFoundException,
    ValidationException,
)
from gateway.autoscaling.schedule import ScheduleError, parse
from gateway.autoscaling.store import OWNED, Key, ScalingStore
from gateway.errors import ApiError

#: The most instances one variant may run (the endpoint spec's ``instance_count`` bound).
MAX_INSTANCES = 64
PAGE = 50
#: Application Auto Scaling's quotas per scalable target.
MAX_POLICIES, MAX_SCHEDULED = 50, 200
ACTIVITY_PAGE = 50

Params = Mapping[str, Any]


class Control(Protocol):
    """The control plane's ``call``/``acall`` (``gateway.control.ControlPlane``)."""

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def acall(self, operation: str, params: Mapping[str, Any]) -> Awaitable[dict[str, Any]]: ...


class ScalingApi:
    def __init__(
        self, store: ScalingStore, control: Control, metrics: policies.MetricLookup, *,
        region: str = "us-east-1", account: str = "000000000000",
        clock: Callable[[], float] = time.time,
        alarms: Callable[[], list[dict[str, Any]]] | None = None, budget: int | None = None,
    ) -> None:  # fmt: skip
        self.store, self.control, self.metrics = store, control, metrics
        #: The host budget in containers (TANDEM_MAX_CONTAINERS): bounds MaxCapacity too.
        self.budget = budget
        self.region, self.account, self.clock = region, account, clock
        #: CloudWatch's alarms, to show which ones invoke a step policy.
        self.alarms = alarms
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "RegisterScalableTarget": self.register_scalable_target,
            "DeregisterScalableTarget": self.deregister_scalable_target,
            "DescribeScalableTargets": self.describe_scalable_targets,
            "PutScalingPolicy": self.put_scaling_policy,
            "DescribeScalingPolicies": self.describe_scaling_policies,
            "DeleteScalingPolicy": self.delete_scaling_policy,
            "DescribeScalingActivities": self.describe_scaling_activities,
            "PutScheduledAction": self.put_scheduled_action,
            "DescribeScheduledActions": self.describe_scheduled_actions,
            "DeleteScheduledAction": self.delete_scheduled_action,
        }

    def call(self, operation: str, params: Params) -> dict[str, Any]:
        """Run ``operation`` (blocking: the route calls it in a worker thread)."""
        handler = self.operations.get(operation)
        if handler is None:
            raise ValidationException(
                f"AnyScaleFrontendService.{operation[:100]} is not served by Tandem; it serves "
                f"{', '.join(self.operations)}."
            )
        return handler(checks.checked(operation, params))

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        """DescribeEndpoint; for an inference component's resource id, its copies described
        as a variant's instances (so every decision reads one shape)."""
        if checks.is_component(name):
            return self._describe_component(name)
        try:
            return self.control.call("DescribeEndpoint", {"EndpointName": name})
        except ApiError:
            return None

    def _describe_component(self, resource: str) -> dict[str, Any] | None:
        component = checks.endpoint_of(resource)[1]
        try:
            found = self.control.call(
                "DescribeInferenceComponent", {"InferenceComponentName": component}
            )
        except ApiError:
            return None
        runtime = found.get("RuntimeConfig") or {}
        copies = {
            "VariantName": component,
            "DesiredInstanceCount": runtime.get("DesiredCopyCount", 0),
            "CurrentInstanceCount": runtime.get("CurrentCopyCount", 0),
        }
        described = {
            "EndpointStatus": found["InferenceComponentStatus"],
            "ProductionVariants": [copies],
        }
        if found.get("FailureReason"):
            described["FailureReason"] = found["FailureReason"]
        return described

    def _variant(self, resource: str) -> dict[str, Any]:
        """The variant a resource id names, from DescribeEndpoint; ValidationException if none."""
        endpoint, variant = checks.endpoint_of(resource)
        described = self.describe_endpoint(endpoint)
        if described is None and checks.is_component(resource):
            raise ValidationException(
                f"ResourceId {resource!r}: there is no inference component {variant!r}."
            )
        if described is None:
            raise ValidationException(
                f"ResourceId {resource!r}: there is no endpoint {endpoint!r}."
            )
        for item in described.get("ProductionVariants") or []:
            if item["VariantName"] == variant:
                return dict(item)
        raise ValidationException(
            f"ResourceId {resource!r}: endpoint {endpoint!r} has no variant {variant!r}."
        )

    def _most(self, resource: str) -> tuple[int, str]:
        """The most instances the variant may run, and the limit that says so: the spec's
        bound, or the host budget over the containers one of its instances runs."""
        spec = (MAX_INSTANCES, f"the limit of {MAX_INSTANCES} instances per variant")
        if self.budget is None:
            return spec
        containers = self._containers(resource)
        most = self.budget // containers
        if most >= MAX_INSTANCES:
            return spec
        return most, (
            f"the host budget of {self.budget} containers (TANDEM_MAX_CONTAINERS): at most "
            f"{most} instances of {containers} container(s)"
        )

    def _containers(self, resource: str) -> int:
        """Containers one instance of the variant runs (its model's), 1 if unknown."""
        endpoint, variant = checks.endpoint_of(resource)
        try:
            described = self.control.call("DescribeEndpoint", {"EndpointName": endpoint})
            config = self.control.call(
                "DescribeEndpointConfig", {"EndpointConfigName": described["EndpointConfigName"]}
            )
            model = next(
                v["ModelName"] for v in config.get("ProductionVariants") or []
                if v["VariantName"] == variant
            )  # fmt: skip
            found = self.control.call("DescribeModel", {"ModelName": model})
        except (ApiError, KeyError, StopIteration):
            return 1
        return max(1, len(found.get("Containers") or []))

    def _target(self, key: Key) -> dict[str, Any]:
        found = self.store.get("target", key)
        if found is None:
            raise ObjectNotFoundException(
                f"No scalable target registered for service namespace: {key[0]}, resource ID: "
                f"{key[1]}, scalable dimension: {key[2]}"
            )
        return found[0]

    def _quota(self, new: bool, kind: str, key: Key, limit: int, what: str) -> None:
        if new and len(self.store.list(kind, key[0], resource=key[1], dimension=key[2])) >= limit:
            raise LimitExceededException(
                f"{key[1]} already has {limit} {what}, the most one scalable target may have."
            )

    def _arn(self, kind: str, key: Key, name: str) -> str:
        return (
            f"arn:aws:autoscaling:{self.region}:{self.account}:{kind}:{uuid.uuid4()}:"
            f"resource/{key[0]}/{key[1]}:{kind}Name/{name}"
        )

    # ---- scalable targets -----------------------------------------------------------------------

    def register_scalable_target(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        self._variant(key[1])
        old = self.store.get("target", key)
        body = dict(old[0]) if old else {}
        for bound in ("MinCapacity", "MaxCapacity"):
            if bound in params:
                body[bound] = params[bound]
            elif not old:
                raise ValidationException(f"{bound} is required to register a new scalable target.")
        low, high = body["MinCapacity"], body["MaxCapacity"]
        if low < 0 or low > high:
            raise ValidationException(
                f"MinCapacity ({low}) must be at least 0 and not above MaxCapacity ({high})."
            )
        most, why = self._most(key[1])
        if high > most:
            raise ValidationException(f"MaxCapacity {high} is over {why}.")
        suspended = {**body.get("SuspendedState", {}), **params.get("SuspendedState", {})}
        arn = body.get("ScalableTargetARN") or (
            f"arn:aws:application-autoscaling:{self.region}:{self.account}:scalable-target/"
            f"{uuid.uuid4().hex}"
        )
        body.update(
            ServiceNamespace=key[0], ResourceId=key[1], ScalableDimension=key[2],
            RoleARN=params.get("RoleARN", body.get("RoleARN", _role(self.account))),
            CreationTime=body.get("CreationTime", self.clock()), ScalableTargetARN=arn,
            SuspendedState={k: bool(suspended.get(k, False)) for k in _SUSPENDED},
        )  # fmt: skip
        self.store.put("target", key, "", checks.endpoint_of(key[1])[0], body)
        return {"ScalableTargetARN": arn}

    def deregister_scalable_target(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        self._target(key)
        self.store.delete(OWNED, key)
        return {}

    def describe_scalable_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace, dimension = checks.optional_key(params)
        found = [b for b, _ in self.store.list("target", namespace, dimension=dimension)]
        if params.get("ResourceIds"):
            found = [b for b in found if b["ResourceId"] in params["ResourceIds"]]
        return checks.page(found, params, "ScalableTargets", PAGE)

    # ---- scaling policies -----------------------------------------------------------------------

    def put_scaling_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        self._target(key)
        name = params["PolicyName"]
        body = policies.check(params, self.metrics)
        old = self.store.get("policy", key, name)
        self._quota(old is None, "policy", key, MAX_POLICIES, "scaling policies")
        arn = old[0]["PolicyARN"] if old else self._arn("scalingPolicy", key, name)
        alarms = policies.alarms(body, key, name, self.region, self.account)
        body.update(
            PolicyARN=arn, PolicyName=name, ServiceNamespace=key[0], ResourceId=key[1],
            ScalableDimension=key[2], Alarms=alarms,
            CreationTime=old[0]["CreationTime"] if old else self.clock(),
        )  # fmt: skip
        self.store.put("policy", key, name, checks.endpoint_of(key[1])[0], body, state={})
        return {"PolicyARN": arn, "Alarms": alarms}

    def describe_scaling_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace, dimension = checks.optional_key(params)
        found = [
            b for b, _ in self.store.list(
                "policy", namespace, resource=params.get("ResourceId"), dimension=dimension,
                names=params.get("PolicyNames") or None,
            )
        ]  # fmt: skip
        if self.alarms is not None and any(b["PolicyType"] == "StepScaling" for b in found):
            every = self.alarms()
            for body in found:
                if body["PolicyType"] == "StepScaling":
                    body["Alarms"] = [
                        {"AlarmName": a["AlarmName"], "AlarmARN": a["AlarmArn"]}
                        for a in every if body["PolicyARN"] in (a.get("AlarmActions") or [])
                    ]  # fmt: skip
        return checks.page(found, params, "ScalingPolicies", PAGE)

    def delete_scaling_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        if not self.store.delete(("policy",), key, params["PolicyName"]):
            raise ObjectNotFoundException(
                f"No scaling policy found for service namespace: {key[0]}, resource ID: {key[1]}, "
                f"scalable dimension: {key[2]}, policy name: {params['PolicyName']}"
            )
        return {}

    # ---- scheduled actions ----------------------------------------------------------------------

    def put_scheduled_action(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        self._target(key)
        name = params["ScheduledActionName"]
        old = self.store.get("scheduled", key, name)
        self._quota(old is None, "scheduled", key, MAX_SCHEDULED, "scheduled actions")
        body = dict(old[0]) if old else {}
        for member in ("Schedule", "Timezone", "ScalableTargetAction"):
            if member in params:
                body[member] = params[member]
        for member in ("StartTime", "EndTime"):
            if member in params:
                body[member] = params[member].timestamp()
        if "Schedule" not in body:
            raise ValidationException("Schedule is required for a new scheduled action.")
        try:
            parse(body["Schedule"], body.get("Timezone"))
        except ScheduleError as exc:
            raise ValidationException(f"Schedule: {exc}") from None
        action = body.get("ScalableTargetAction") or {}
        low, high = action.get("MinCapacity"), action.get("MaxCapacity")
        if low is None and high is None:
            raise ValidationException(
                "ScalableTargetAction needs MinCapacity, MaxCapacity or both."
            )
        most, why = self._most(key[1])
        if (
            (low is not None and low < 0)
            or (high is not None and high > most)
            or (low is not None and high is not None and low > high)
        ):
            raise ValidationException(
                f"ScalableTargetAction: MinCapacity {low} and MaxCapacity {high} must be within "
                f"0-{most} ({why}), MinCapacity not above MaxCapacity."
            )
        if body.get("StartTime") and body.get("EndTime") and body["StartTime"] > body["EndTime"]:
            raise ValidationException("StartTime must be before EndTime.")
        arn = body.get("ScheduledActionARN") or self._arn("scheduledAction", key, name)
        body.update(
            ScheduledActionName=name, ScheduledActionARN=arn, ServiceNamespace=key[0],
            ResourceId=key[1], ScalableDimension=key[2],
            CreationTime=body.get("CreationTime", self.clock()),
        )  # fmt: skip
        self.store.put("scheduled", key, name, checks.endpoint_of(key[1])[0], body, state={})
        return {"ScheduledActionARN": arn}

    def describe_scheduled_actions(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace, dimension = checks.optional_key(params)
        found = [
            b for b, _ in self.store.list(
                "scheduled", namespace, resource=params.get("ResourceId"), dimension=dimension,
                names=params.get("ScheduledActionNames") or None,
            )
        ]  # fmt: skip
        return checks.page(found, params, "ScheduledActions", PAGE)

    def delete_scheduled_action(self, params: dict[str, Any]) -> dict[str, Any]:
        key = checks.target_key(params)
        if not self.store.delete(("scheduled",), key, params["ScheduledActionName"]):
            raise ObjectNotFoundException(
                f"No scheduled action found for service namespace: {key[0]}, resource ID: "
                f"{key[1]}, scalable dimension: {key[2]}, scheduled action name: "
                f"{params['ScheduledActionName']}"
            )
        return {}

    # ---- activities -----------------------------------------------------------------------------

    def describe_scaling_activities(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace, dimension = checks.optional_key(params)
        found = [
            b for b, _ in self.store.list(
                "activity", namespace, resource=params.get("ResourceId"), dimension=dimension,
                newest_first=True,
            )
        ]  # fmt: skip
        if not params.get("IncludeNotScaledActivities"):
            found = [b for b in found if not b.get("NotScaledReasons")]
        return checks.page(found, params, "ScalingActivities", ACTIVITY_PAGE)


_SUSPENDED = (
    "DynamicScalingInSuspended",
    "DynamicScalingOutSuspended",
    "ScheduledScalingSuspended",
)


def _role(account: str) -> str:
    return (
        f"arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling."
        "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )


__all__ = ["AutoScalingError", "Control", "ScalingApi"]
