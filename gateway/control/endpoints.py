"""``*Endpoint``: the desired state is written here; the reconciler makes it so, then reports.

``CreateEndpoint`` writes ``Creating``, ``UpdateEndpoint`` ``Updating`` (the pending config beside
the serving one), ``DeleteEndpoint`` ``Deleting``; each then kicks the reconciler. The reconciler
writes ``InService``, ``Failed`` with a reason, the end of an update (or its rollback) and the
row's removal through the store. As on SageMaker, only an ``InService`` endpoint can be updated;
a ``Failed`` one is deleted and created again. Deleting is accepted in any status.

An endpoint runs its own copy of its config and models (``Deployed``, taken when it was created
or updated), so ``DescribeEndpoint``, ``UpdateEndpointWeightsAndCapacities`` and the reconciler
read that copy: the config and models may be deleted while it serves, as on SageMaker. What a
call would make run is admitted against the host budget (``budget``) in its transaction.
"""

from __future__ import annotations

from typing import Any

from gateway.control import budget, deployment_config
from gateway.control.context import ControlContext, Result, page, query
from gateway.control.models import config_record, model_record
from gateway.control.translate import containers_of
from gateway.control.variants import endpoint_spec
from gateway.errors import ValidationException
from gateway.state import ConfigRecord, Deployed, EndpointRecord, EndpointStatus, WrongState
from pipelines.spec import EndpointSpec

#: Statuses in which the endpoint's containers run (and answer, for the runtime API).
RUNNING = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING})


def spec_for(ctx: ControlContext, endpoint: str, config: ConfigRecord) -> EndpointSpec:
    """The spec that ``endpoint`` runs under ``config``: every variant, each its model's."""
    return endpoint_spec(endpoint, config.request, lambda m: model_record(ctx, m).request)


def deployed_spec(endpoint: str, deployed: Deployed) -> EndpointSpec:
    """The spec ``endpoint`` runs from its own copy of a config and its models."""
    return endpoint_spec(endpoint, deployed.request, lambda m: deployed.model(m) or {})


def running_spec(ctx: ControlContext, endpoint: str, config: str) -> EndpointSpec:
    """What the reconciler starts for ``endpoint`` on ``config``: the endpoint's own copy (the
    serving one, or the pending one while it updates), never the config table's."""
    record = endpoint_record(ctx, endpoint)
    for deployed in (record.deployed, record.pending_deployed):
        if deployed is not None and deployed.config.lower() == config.lower():
            return deployed_spec(record.name, deployed)
    raise ValidationException(f'Endpoint "{record.name}" does not run configuration "{config}".')


def recreate_endpoint(ctx: ControlContext, endpoint: str, config: str) -> Result:
    """A ``Failed`` endpoint created again on ``config`` (a spec file applied again)."""
    record = ctx.store.recreate_endpoint(endpoint, config, admit=budget.admit(ctx.budget))
    return Result(kick=[record.name])


def create_endpoint(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["EndpointName"]
    config = config_record(ctx, params["EndpointConfigName"])
    spec_for(ctx, name, config)
    if params.get("DeploymentConfig"):
        deployment_config.check(params["DeploymentConfig"], config.request, ctx.alarms)
    record = ctx.store.add_endpoint(
        name, ctx.arn("endpoint", name), config.name, params, admit=budget.admit(ctx.budget)
    )
    return Result({"EndpointArn": record.arn}, kick=[record.name])


def update_endpoint(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["EndpointName"]
    current = endpoint_record(ctx, name)
    config = config_record(ctx, params["EndpointConfigName"])
    spec_for(ctx, current.name, config)
    policy = params.get("DeploymentConfig")
    if policy is None and params.get("RetainDeploymentConfig"):
        policy = current.deployment_config  # the last one given, checked again on this fleet
    rollout = None
    if policy:
        serving = current.deployed.request if current.deployed is not None else {}
        deployment_config.check(policy, config.request, ctx.alarms, serving=serving)
        rollout = {"policy": policy, "phase": "Creating", "share": 0.0}
    try:
        record = ctx.store.begin_update(
            name,
            config.name,
            admit=budget.admit(ctx.budget),
            rollout=rollout,
            remember=params.get("DeploymentConfig"),
        )
    except WrongState as exc:
        if exc.status == EndpointStatus.FAILED:
            raise ValidationException(
                f'Cannot update failed endpoint "{current.arn}"; delete it and create it again.'
            ) from exc
        raise ValidationException(
            f'Cannot update in-progress endpoint "{current.arn}" (it is {exc.status}).'
        ) from exc
    return Result({"EndpointArn": record.arn}, kick=[record.name])


def delete_endpoint(ctx: ControlContext, params: dict[str, Any]) -> Result:
    components = [c.name for c in ctx.store.components(params["EndpointName"])]
    if components:
        raise ValidationException(
            f'Cannot delete endpoint "{params["EndpointName"]}": inference components are '
            f"deployed to it ({', '.join(components)}); delete them first."
        )
    record = ctx.store.begin_delete(params["EndpointName"])
    return Result(kick=[record.name])


def describe_endpoint(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = endpoint_record(ctx, params["EndpointName"])
    body: dict[str, Any] = {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "EndpointConfigName": record.config,
        "EndpointStatus": record.status.value,
        "CreationTime": record.created,
        "LastModifiedTime": record.modified,
    }
    deployed = record.deployed
    if deployed is not None:
        body["ProductionVariants"] = _variants(ctx, deployed, record)
        shadows = _variants(ctx, deployed, record, shadow=True)
        if shadows:
            body["ShadowProductionVariants"] = shadows
        capture = deployed.request.get("DataCaptureConfig")
        if capture:
            body["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
                "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
            }
        if deployed.request.get("AsyncInferenceConfig"):
            body["AsyncInferenceConfig"] = deployed.request["AsyncInferenceConfig"]
    if record.failure_reason is not None:
        body["FailureReason"] = record.failure_reason
    if record.deployment_config:
        body["LastDeploymentConfig"] = record.deployment_config
    if record.pending_config is not None:
        body["PendingDeploymentSummary"] = _pending(ctx, record)
    return Result(body)


def _pending(ctx: ControlContext, record: EndpointRecord) -> dict[str, Any]:
    """``PendingDeploymentSummary``: the config an update moves to, its variants ``Creating``
    since the update began, then (with a DeploymentConfig) each step of the traffic shift and
    its baking, the share of the traffic on the new fleet in their messages."""
    summary: dict[str, Any] = {"EndpointConfigName": record.pending_config}
    if record.update_started is not None:
        summary["StartTime"] = record.update_started
    pending = record.pending_deployed
    if pending is not None:
        status: dict[str, Any] = {"Status": "Creating"}
        if record.update_started is not None:
            status["StartTime"] = record.update_started
        stages = [status, *((record.rollout or {}).get("stages") or [])][-5:]
        share = float((record.rollout or {}).get("share", 0.0))
        for member, shadow in (("ProductionVariants", False), ("ShadowProductionVariants", True)):
            variants = [
                {**v, "CurrentWeight": v["DesiredWeight"] * share, "VariantStatus": stages}
                for v in _variants(ctx, pending, None, shadow=shadow)
            ]
            if variants or not shadow:
                summary[member] = variants
    return summary


def list_endpoints(ctx: ControlContext, params: dict[str, Any]) -> Result:
    found = ctx.store.list_endpoints(query(params, modified=True, status=True))
    items = [
        {
            "EndpointName": e.name,
            "EndpointArn": e.arn,
            "CreationTime": e.created,
            "LastModifiedTime": e.modified,
            "EndpointStatus": e.status.value,
        }
        for e in found.items
    ]
    return page("Endpoints", items, found.next_token)


def endpoint_record(ctx: ControlContext, name: str) -> EndpointRecord:
    record = ctx.store.get_endpoint(name)
    if record is None:
        raise ValidationException(f'Could not find endpoint "{name}".')
    return record


def _variants(
    ctx: ControlContext, config: Deployed, record: EndpointRecord | None, *, shadow: bool = False
) -> list[dict[str, Any]]:
    """Each variant's summary: desired from the config and UpdateEndpointWeightsAndCapacities,
    current from what runs (``record`` is None for a pending config: nothing runs yet)."""
    member = "ShadowProductionVariants" if shadow else "ProductionVariants"
    running = record is not None and record.status in RUNNING
    observed = ctx.observe(record.name) if running and ctx.observe and record else None
    desired_of = record.desired if record is not None else {}
    out = []
    for variant in config.request.get(member) or []:
        name = variant["VariantName"]
        model = config.model(variant["ModelName"]) if variant.get("ModelName") else None
        images = [] if model is None else [c.get("Image") for _, c in containers_of(model)]
        desired = desired_of.get(name, {})
        weight = float(desired.get("weight", variant.get("InitialVariantWeight", 1.0)))
        count = int(desired.get("count", variant.get("InitialInstanceCount", 1)))
        now = (observed or {}).get(name)
        summary: dict[str, Any] = {
            "VariantName": name,
            "DeployedImages": [{"SpecifiedImage": i} for i in images if i],
            "CurrentWeight": now[0] if now else (weight if running else 0.0),
            "DesiredWeight": weight,
            "CurrentInstanceCount": now[1] if now else (count if running else 0),
            "DesiredInstanceCount": count,
        }
        for member in ("ManagedInstanceScaling", "RoutingConfig"):
            if variant.get(member):
                summary[member] = variant[member]
        out.append(summary)
    return out


def update_endpoint_weights_and_capacities(ctx: ControlContext, params: dict[str, Any]) -> Result:
    """New weights and instance counts on the config the endpoint serves, applied live."""
    name = params["EndpointName"]
    record = endpoint_record(ctx, name)
    serving = record.deployed.request if record.deployed is not None else {}
    production = {v["VariantName"]: v for v in serving.get("ProductionVariants") or []}
    shadows = {v["VariantName"] for v in serving.get("ShadowProductionVariants") or []}
    desired: dict[str, dict[str, float]] = {}
    for i, item in enumerate(params["DesiredWeightsAndCapacities"]):
        at = f"desiredWeightsAndCapacities.{i + 1}.member"
        variant = item["VariantName"]
        if variant not in production and variant not in shadows:
            known = ", ".join([*production, *shadows])
            raise ValidationException(
                f'{at}.variantName: variant "{variant}" is not part of endpoint "{name}" '
                f"(its variants: {known})."
            )
        if variant in desired:
            raise ValidationException(f"{at}.variantName: variant {variant!r} is given twice.")
        entry: dict[str, float] = {}
        if "DesiredWeight" in item:
            if variant in shadows:
                raise ValidationException(
                    f"{at}.desiredWeight: {variant!r} is a shadow variant: its share is set by "
                    "its endpoint config."
                )
            entry["weight"] = float(item["DesiredWeight"])
        if "DesiredInstanceCount" in item:
            if item["DesiredInstanceCount"] < 0:
                raise ValidationException(
                    f"{at}.desiredInstanceCount: must be at least 0 (0 scales the variant to "
                    "zero: its requests are held while an instance starts)."
                )
            entry["count"] = int(item["DesiredInstanceCount"])
        if not entry:
            raise ValidationException(
                f"{at}: give DesiredWeight, DesiredInstanceCount or both for {variant!r}."
            )
        desired[variant] = entry
    weights = {
        v: float(
            desired.get(v, {}).get(
                "weight",
                record.desired.get(v, {}).get("weight", item.get("InitialVariantWeight", 1.0)),
            )
        )
        for v, item in production.items()
    }
    if sum(weights.values()) <= 0:
        raise ValidationException(
            "desiredWeightsAndCapacities: every production variant's weight would be 0; at "
            "least one must take traffic (a weight of 0 keeps a variant reachable by "
            "TargetVariant only)."
        )
    try:
        updated = ctx.store.begin_resize(name, desired, admit=budget.admit(ctx.budget))
    except WrongState as exc:
        raise ValidationException(
            f'Cannot update in-progress endpoint "{record.arn}" (it is {exc.status}).'
        ) from exc
    return Result({"EndpointArn": updated.arn}, kick=[name])
