"""``*InferenceComponent``: models with their own reservations and copies on one endpoint.

A component names an endpoint whose config is for components (production variants without
``ModelName``) and describes one copy: a model (``ModelName``, copied now, so the model may be
deleted meanwhile), or its own ``Container``, or a base component's with its own artifact;
``ComputeResourceRequirements`` reserve CPU cores and memory on an instance. The call checks
and writes (``Creating``, ``Updating``, ``Deleting``), then kicks the component runner
(``gateway.lifecycle.components``), which places and starts the copies and reports back.

A reservation larger than one instance can hold is refused at once; copies past the host budget
(``TANDEM_MAX_CONTAINERS``, with every endpoint and other component counted) are SageMaker's
``ResourceLimitExceeded``; copies within it that do not fit on the instances stay pending with
the reason in ``FailureReason`` (or, with ``ManagedInstanceScaling``, add an instance).
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.control.budget import SETTING, endpoint_cost
from gateway.control.context import ControlContext, Result, page, query
from gateway.control.models import checked_model, model_record
from gateway.control.translate import containers_of
from gateway.errors import ResourceLimitExceeded, ValidationException
from gateway.state import (
    ComponentRecord,
    ComponentStatus,
    EndpointStatus,
    WrongState,
    for_components,
)
from gateway.state.components import AdmitComponent

#: Members Tandem refuses rather than ignores (they would change what runs).
_UNSUPPORTED = {
    "Specifications": "give one Specification; Tandem's instances are all of one type",
}
_REQUIREMENTS_UNSUPPORTED = {"NumberOfAcceleratorDevicesRequired": "Tandem has no accelerators"}


def create_inference_component(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["InferenceComponentName"]
    _refuse_unsupported(params)
    endpoint = ctx.store.get_endpoint(params["EndpointName"])
    if endpoint is None:
        raise ValidationException(f'Could not find endpoint "{params["EndpointName"]}".')
    config = endpoint.deployed.request if endpoint.deployed is not None else {}
    if not for_components(config):
        raise ValidationException(
            f'Endpoint "{endpoint.name}" is not configured for inference components: its '
            f'endpoint configuration "{endpoint.config}" names a model in its production '
            "variants. Create the endpoint from a configuration whose production variants "
            "leave ModelName out."
        )
    if endpoint.status in (EndpointStatus.FAILED, EndpointStatus.DELETING):
        raise ValidationException(
            f'Cannot create inference component "{name}" on endpoint "{endpoint.name}" '
            f"while it is {endpoint.status}."
        )
    variant = _variant(config, params.get("VariantName"), endpoint.name)
    spec = params.get("Specification")
    if spec is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'specification' failed to satisfy "
            "constraint: Member must not be null"
        )
    model = _copy_model(ctx, name, spec, variant)
    copies = int((params.get("RuntimeConfig") or {}).get("CopyCount", 1))
    request = copy.deepcopy(params)
    record = ctx.store.add_component(
        name,
        ctx.arn("inference-component", name),
        endpoint.name,
        variant["VariantName"],
        request,
        model,
        copies,
        admit=_admit(ctx),
    )
    return Result({"InferenceComponentArn": record.arn}, kick_components=[record.name])


def update_inference_component(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["InferenceComponentName"]
    _refuse_unsupported(params)
    current = component_record(ctx, name)
    copies = int((params.get("RuntimeConfig") or {}).get("CopyCount", current.copies))
    spec = params.get("Specification")
    try:
        if spec is None:
            if "RuntimeConfig" not in params:
                raise ValidationException(
                    "Give Specification, RuntimeConfig or both to update inference component "
                    f'"{current.name}".'
                )
            record = ctx.store.begin_copies(name, copies, admit=_admit(ctx))
        else:
            endpoint = ctx.store.get_endpoint(current.endpoint)
            config = endpoint.deployed.request if endpoint and endpoint.deployed else {}
            variant = _variant(config, current.variant, current.endpoint)
            model = _copy_model(ctx, current.name, spec, variant)
            request = {**copy.deepcopy(current.request), **copy.deepcopy(params)}
            request["RuntimeConfig"] = {"CopyCount": copies}
            record = ctx.store.begin_component_update(
                name, request, model, copies, admit=_admit(ctx)
            )
    except WrongState as exc:
        raise _in_progress(current, exc) from exc
    return Result({"InferenceComponentArn": record.arn}, kick_components=[record.name])


def update_inference_component_runtime_config(
    ctx: ControlContext, params: dict[str, Any]
) -> Result:
    name = params["InferenceComponentName"]
    current = component_record(ctx, name)
    copies = int(params["DesiredRuntimeConfig"]["CopyCount"])
    try:
        record = ctx.store.begin_copies(name, copies, admit=_admit(ctx))
    except WrongState as exc:
        raise _in_progress(current, exc) from exc
    return Result({"InferenceComponentArn": record.arn}, kick_components=[record.name])


def delete_inference_component(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = ctx.store.begin_component_delete(params["InferenceComponentName"])
    return Result(kick_components=[record.name])


def describe_inference_component(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = component_record(ctx, params["InferenceComponentName"])
    view = ctx.observe_component(record.name) if ctx.observe_component else None
    current = int((view or {}).get("current", 0))
    spec = record.specification
    summary: dict[str, Any] = {
        k: v for k, v in spec.items() if k not in ("Container", "DataCacheConfig")
    }
    container = spec.get("Container")
    if container:
        summary["Container"] = {
            k: v for k, v in container.items() if k in ("ArtifactUrl", "Environment")
        }
        if container.get("Image"):
            summary["Container"]["DeployedImage"] = {"SpecifiedImage": container["Image"]}
    body: dict[str, Any] = {
        "InferenceComponentName": record.name,
        "InferenceComponentArn": record.arn,
        "EndpointName": record.endpoint,
        "EndpointArn": ctx.arn("endpoint", record.endpoint),
        "VariantName": record.variant,
        "Specification": summary,
        "RuntimeConfig": {"DesiredCopyCount": record.copies, "CurrentCopyCount": current},
        "CreationTime": record.created,
        "LastModifiedTime": record.modified,
        "InferenceComponentStatus": record.status.value,
    }
    reason = record.failure_reason or (view or {}).get("pending")
    if reason:
        body["FailureReason"] = str(reason)[:1024]
    if record.request.get("DeploymentConfig"):
        body["LastDeploymentConfig"] = record.request["DeploymentConfig"]
    return Result(body)


def list_inference_components(ctx: ControlContext, params: dict[str, Any]) -> Result:
    found = ctx.store.list_components(
        query(params, modified=True, status=True),
        endpoint=params.get("EndpointNameEquals"),
        variant=params.get("VariantNameEquals"),
    )
    items = [
        {
            "InferenceComponentName": c.name,
            "InferenceComponentArn": c.arn,
            "EndpointName": c.endpoint,
            "EndpointArn": ctx.arn("endpoint", c.endpoint),
            "VariantName": c.variant,
            "InferenceComponentStatus": c.status.value,
            "CreationTime": c.created,
            "LastModifiedTime": c.modified,
        }
        for c in found.items
    ]
    return page("InferenceComponents", items, found.next_token)


def component_record(ctx: ControlContext, name: str) -> ComponentRecord:
    record = ctx.store.get_component(name)
    if record is None:
        raise ValidationException(f'Could not find inference component "{name}".')
    return record


def reservation(spec: dict[str, Any]) -> tuple[float, int, int | None]:
    """A copy's reservation: (CPU cores, memory MiB it needs, memory MiB it may use or None)."""
    needs = spec.get("ComputeResourceRequirements") or {}
    return (
        float(needs.get("NumberOfCpuCoresRequired", 0.0)),
        int(needs.get("MinMemoryRequiredInMb", 0)),
        needs.get("MaxMemoryRequiredInMb"),
    )


def _refuse_unsupported(params: dict[str, Any]) -> None:
    for member, why in _UNSUPPORTED.items():
        if params.get(member) is not None:
            raise ValidationException(
                f"{member[:1].lower() + member[1:]}: {member} is not supported by Tandem ({why})."
            )
    needs = (params.get("Specification") or {}).get("ComputeResourceRequirements") or {}
    for member, why in _REQUIREMENTS_UNSUPPORTED.items():
        if needs.get(member) is not None:
            raise ValidationException(
                f"specification.computeResourceRequirements.{member[:1].lower() + member[1:]}: "
                f"{member} is not supported by Tandem ({why})."
            )


def _variant(config: dict[str, Any], name: str | None, endpoint: str) -> dict[str, Any]:
    variants = config.get("ProductionVariants") or []
    if name is None:
        if len(variants) == 1:
            return dict(variants[0])
        raise ValidationException(
            f'Endpoint "{endpoint}" has {len(variants)} production variants; give VariantName.'
        )
    for variant in variants:
        if variant["VariantName"] == name:
            return dict(variant)
    known = ", ".join(v["VariantName"] for v in variants)
    raise ValidationException(
        f'Variant "{name}" is not part of endpoint "{endpoint}" (its variants: {known}).'
    )


def _copy_model(
    ctx: ControlContext, name: str, spec: dict[str, Any], variant: dict[str, Any]
) -> dict[str, Any]:
    """The CreateModel-shaped request one copy runs, checked; its reservation fits an instance."""
    container = spec.get("Container")
    base = spec.get("BaseInferenceComponentName")
    if sum(x is not None for x in (spec.get("ModelName"), container, base)) == 0:
        raise ValidationException(
            "specification: give ModelName, Container or BaseInferenceComponentName."
        )
    if spec.get("ModelName") is not None and container is not None:
        raise ValidationException("specification: give ModelName or Container, not both.")
    if base is not None:
        model = copy.deepcopy(component_record(ctx, base).model)
    elif spec.get("ModelName") is not None:
        model = copy.deepcopy(model_record(ctx, spec["ModelName"]).request)
    else:
        model = {"PrimaryContainer": {}}
    if container is not None:
        definitions = containers_of(model)
        if len(definitions) != 1:
            raise ValidationException(
                f'specification.container: the base component "{base}" runs '
                f"{len(definitions)} containers; a Container can replace only one."
            )
        target = definitions[0][1]
        if container.get("Image"):
            target["Image"] = container["Image"]
        if container.get("ArtifactUrl"):
            target["ModelDataUrl"] = container["ArtifactUrl"]
        if container.get("Environment"):
            target["Environment"] = {**target.get("Environment", {}), **container["Environment"]}
        model["PrimaryContainer"] = target
        model.pop("Containers", None)
        checked_model(ctx, name, model)
    _fits_instance(ctx, spec, variant)
    return model


def _fits_instance(ctx: ControlContext, spec: dict[str, Any], variant: dict[str, Any]) -> None:
    cores, memory, most = reservation(spec)
    at = "specification.computeResourceRequirements"
    if most is not None and most < memory:
        raise ValidationException(
            f"{at}.maxMemoryRequiredInMb: {most} is less than MinMemoryRequiredInMb {memory}."
        )
    if ctx.instance_capacity is None:
        return
    have_cores, have_memory = ctx.instance_capacity
    kind = variant.get("InstanceType", "the variant's instance type")
    if cores > have_cores or memory > have_memory:
        raise ValidationException(
            f"{at}: the reservation of one copy ({cores:g} CPU cores, {memory} MiB of memory) "
            f"is larger than an instance of {kind} offers ({have_cores:g} CPU cores, "
            f"{have_memory} MiB; TANDEM_INSTANCE_CPUS, TANDEM_INSTANCE_MEMORY_MB). Ask for less."
        )


def _admit(ctx: ControlContext) -> AdmitComponent | None:
    """The store's ``admit`` for components: every copy is a container of the host budget."""
    limit = ctx.budget
    if limit is None:
        return None
    endpoints = sum(endpoint_cost(e) for e in ctx.store.endpoints())

    def check(record: ComponentRecord, others: list[ComponentRecord]) -> None:
        used = endpoints + sum(_cost(o) for o in others)
        asked = _cost(record)
        if used + asked > limit:
            raise ResourceLimitExceeded(
                f"The host limit 'containers for endpoint usage' ({SETTING}) is {limit} "
                f"containers, with current utilization of {used} containers and a request "
                f'delta of {asked} containers (inference component "{record.name}": '
                f"{record.copies} copies x {_containers(record)} container(s)). Ask for fewer "
                f"copies, delete other components or endpoints, or raise {SETTING}."
            )

    return check


def _containers(record: ComponentRecord) -> int:
    return max(1, len(containers_of(record.model)))


def _cost(record: ComponentRecord) -> int:
    """Containers a component holds: its copies (twice while a new specification rolls out)."""
    if record.status is ComponentStatus.FAILED:
        return 0
    cost = record.copies * _containers(record)
    if record.pending_model is not None:
        cost += record.copies * max(1, len(containers_of(record.pending_model)))
    return cost


def _in_progress(record: ComponentRecord, exc: WrongState) -> ValidationException:
    return ValidationException(
        f'Cannot update inference component "{record.arn}" while it is {exc.status}; wait '
        "until it is InService."
    )
