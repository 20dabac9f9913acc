"""``*Model`` and ``*EndpointConfig``: what runs, checked whole before anything is written.

A model is checked by turning it into the spec it would run (``translate.to_spec``), so the API
refuses exactly what a spec file would; its model data must lie under the allowed roots, and
local paths are stored absolute so that a restart from another folder means the same files.
``ExecutionRoleArn``, ``VpcConfig``, ``EnableNetworkIsolation`` and ``Tags`` are accepted and
ignored; members that would change what runs but that Tandem does not do are refused.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.container_env import SUBMIT_ENV
from gateway.control import budget
from gateway.control.context import ControlContext, Result, page, query, unsupported
from gateway.control.shapes import member_path
from gateway.control.translate import COMMAND_ENV, check_model_data, containers_of, to_spec
from gateway.control.variants import endpoint_spec
from gateway.errors import ResourceLimitExceeded, ValidationException
from gateway.state import ConfigRecord, ModelRecord, for_components
from pipelines.errors import TandemError
from pipelines.spec import MAX_CONTAINERS, MAX_VARIANTS

_CONTAINER_UNSUPPORTED = {
    "ModelPackageName": "model packages need SageMaker's model registry",
    "AdditionalModelDataSources": "give one ModelDataUrl per container",
}
_CONFIG_UNSUPPORTED = {
    "ExplainerConfig": "SageMaker Clarify explainers are not part of Tandem",
}
#: SageMaker's variable naming the entry point of the user's code.
PROGRAM_ENV = "SAGEMAKER_PROGRAM"
_VARIANT_UNSUPPORTED = {"ModelDataDownloadTimeoutInSeconds": "", "InstancePools": ""}


def precheck_model(params: dict[str, Any]) -> None:
    """Before the generic checks: too many containers is SageMaker's ``ResourceLimitExceeded``."""
    containers = params.get("Containers")
    if isinstance(containers, list) and len(containers) > MAX_CONTAINERS:
        raise ResourceLimitExceeded(
            f"Value at 'containers' has {len(containers)} containers; a model holds at most "
            f"{MAX_CONTAINERS}."
        )


def create_model(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["ModelName"]
    request = copy.deepcopy(params)
    has_primary, has_list = "PrimaryContainer" in request, "Containers" in request
    if has_primary == has_list:
        raise ValidationException(
            "Exactly one of 'primaryContainer' and 'containers' must be given "
            f"(got {'both' if has_primary else 'neither'})."
        )
    if has_list and not request["Containers"]:
        raise ValidationException(
            "Value '[]' at 'containers' failed to satisfy constraint: Member must have length "
            "greater than or equal to 1"
        )
    checked_model(ctx, name, request)
    ctx.store.add_model(name, ctx.arn("model", name), request)
    return Result({"ModelArn": ctx.arn("model", name)})


def checked_model(ctx: ControlContext, name: str, request: dict[str, Any]) -> None:
    """A CreateModel request's containers checked and their locations confined, in place (an
    inference component's own ``Container`` is checked this way too)."""
    for path, container in containers_of(request):
        for member, why in _CONTAINER_UNSUPPORTED.items():
            if container.get(member) is not None:
                raise ValidationException(
                    f"{member_path(*path, member)}: {member} is not supported by Tandem ({why})."
                )
        _check_image(path, container)
        _confine(ctx, path, container)
        _check_code(ctx, path, container)
        _store_container(request, path, container)
    to_spec(name, request)


def describe_model(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = model_record(ctx, params["ModelName"])
    body = {k: v for k, v in record.request.items() if k not in ("ModelName", "Tags")}
    body.setdefault("EnableNetworkIsolation", False)
    return Result(
        {"ModelName": record.name, "ModelArn": record.arn, "CreationTime": record.created, **body}
    )


def list_models(ctx: ControlContext, params: dict[str, Any]) -> Result:
    found = ctx.store.list_models(query(params))
    items = [_model_summary(m) for m in found.items]
    return page("Models", items, found.next_token)


def delete_model(ctx: ControlContext, params: dict[str, Any]) -> Result:
    ctx.store.delete_model(params["ModelName"])
    return Result()


def create_endpoint_config(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["EndpointConfigName"]
    unsupported(params, _CONFIG_UNSUPPORTED)
    production = params["ProductionVariants"]
    shadows = params.get("ShadowProductionVariants") or []
    if len(production) > MAX_VARIANTS:
        raise ValidationException(
            f"Value at 'productionVariants' has {len(production)} variants; an endpoint config "
            f"holds at most {MAX_VARIANTS}."
        )
    if shadows and (len(production) != 1 or len(shadows) != 1):
        raise ValidationException(
            "With shadowProductionVariants, give exactly one production variant and one shadow "
            f"variant (got {len(production)} and {len(shadows)})."
        )
    if for_components(params):
        return _create_component_config(ctx, name, params)
    models: dict[str, str] = {}
    for member, variants in (
        ("ProductionVariants", production),
        ("ShadowProductionVariants", shadows),
    ):
        for i, variant in enumerate(variants):
            for unknown in _VARIANT_UNSUPPORTED:
                if variant.get(unknown) is not None:
                    raise ValidationException(
                        f"{member_path(member, i, unknown)}: {unknown} is not supported by "
                        "Tandem yet."
                    )
            if not variant.get("ModelName"):
                at = member_path(member, i, "ModelName")
                raise ValidationException(
                    f"1 validation error detected: Value null at '{at}' failed to satisfy "
                    "constraint: Member must not be null (a config for inference components "
                    "leaves ModelName out of every production variant)"
                )
            if variant["VariantName"] in models:
                raise ValidationException(
                    f"{member_path(member, i, 'VariantName')}: variant name "
                    f"{variant['VariantName']!r} is used twice; each variant needs its own name."
                )
            models[variant["VariantName"]] = model_record(ctx, variant["ModelName"]).name
    # Before the spec's own checks: a config that could never fit this host is SageMaker's
    # ResourceLimitExceeded, whatever else is wrong with its counts.
    budget.check_config(ctx.budget, name, params, lambda m: model_record(ctx, m).request)
    if production and sum(float(v.get("InitialVariantWeight", 1.0)) for v in production) <= 0:
        raise ValidationException(
            "productionVariants: every InitialVariantWeight is 0; at least one variant must "
            "take traffic."
        )
    request = copy.deepcopy(params)
    _confine_outputs(ctx, request)
    # The spec it would run: each variant's model, names, weights and tags must fit.
    endpoint_spec(name, request, lambda model: model_record(ctx, model).request)
    ctx.store.add_config(name, ctx.arn("endpoint-config", name), request, models)
    return Result({"EndpointConfigArn": ctx.arn("endpoint-config", name)})


def _create_component_config(ctx: ControlContext, name: str, params: dict[str, Any]) -> Result:
    """A config for inference components: its variants are instances that copies of the
    components are placed on (no model of their own, so nothing runs until a component is
    created on the endpoint)."""
    for member, why in (
        ("ShadowProductionVariants", "shadow variants need a model per variant"),
        ("AsyncInferenceConfig", "asynchronous inference needs a model per variant"),
        ("DataCaptureConfig", "capture is per variant model"),
    ):
        if params.get(member):
            raise ValidationException(
                f"{member[:1].lower() + member[1:]}: {member} is not supported by Tandem on an "
                f"endpoint configuration for inference components ({why})."
            )
    seen: set[str] = set()
    for i, variant in enumerate(params["ProductionVariants"]):
        for unknown in (*_VARIANT_UNSUPPORTED, "ServerlessConfig"):
            if variant.get(unknown) is not None:
                raise ValidationException(
                    f"{member_path('ProductionVariants', i, unknown)}: {unknown} is not "
                    "supported by Tandem yet."
                )
        if variant["VariantName"] in seen:
            raise ValidationException(
                f"{member_path('ProductionVariants', i, 'VariantName')}: variant name "
                f"{variant['VariantName']!r} is used twice; each variant needs its own name."
            )
        seen.add(variant["VariantName"])
        count = int(variant.get("InitialInstanceCount", 1))
        scaling = variant.get("ManagedInstanceScaling") or {}
        low = int(scaling.get("MinInstanceCount", 0))
        high = int(scaling.get("MaxInstanceCount", max(count, low)))
        if scaling and not low <= high:
            raise ValidationException(
                f"{member_path('ProductionVariants', i, 'ManagedInstanceScaling')}: "
                f"MinInstanceCount {low} is more than MaxInstanceCount {high}."
            )
        if scaling and not low <= count <= high:
            raise ValidationException(
                f"{member_path('ProductionVariants', i, 'InitialInstanceCount')}: {count} is "
                f"outside ManagedInstanceScaling's MinInstanceCount {low} and MaxInstanceCount "
                f"{high}."
            )
    request = copy.deepcopy(params)
    ctx.store.add_config(name, ctx.arn("endpoint-config", name), request, {})
    return Result({"EndpointConfigArn": ctx.arn("endpoint-config", name)})


def _confine_outputs(ctx: ControlContext, request: dict[str, Any]) -> None:
    """Where captures and async answers are written must lie under the allowed roots too, and
    be writable now (a destination that cannot be written is refused at create time)."""
    capture = request.get("DataCaptureConfig")
    if capture and capture.get("DestinationS3Uri"):
        at = "DataCaptureConfig.DestinationS3Uri"
        capture["DestinationS3Uri"] = check_model_data(
            capture["DestinationS3Uri"],
            ctx.model_roots,
            member=at,
            exist=False,
            forbidden=ctx.forbidden,
        )
        if capture.get("EnableCapture", True):
            _writable(capture["DestinationS3Uri"], at)
    output = (request.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
    for member in ("S3OutputPath", "S3FailurePath"):
        if output.get(member):
            output[member] = check_model_data(
                output[member],
                ctx.model_roots,
                member=f"AsyncInferenceConfig.{member}",
                exist=False,
                forbidden=ctx.forbidden,
            )


def _writable(url: str, member: str) -> None:
    from gateway.capture import check_destination

    try:
        check_destination(url)
    except TandemError as exc:
        raise ValidationException(f"{member}: {exc}") from exc


def describe_endpoint_config(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = config_record(ctx, params["EndpointConfigName"])
    body = {k: v for k, v in record.request.items() if k not in ("EndpointConfigName", "Tags")}
    return Result(
        {
            "EndpointConfigName": record.name,
            "EndpointConfigArn": record.arn,
            "CreationTime": record.created,
            **body,
        }
    )


def list_endpoint_configs(ctx: ControlContext, params: dict[str, Any]) -> Result:
    found = ctx.store.list_configs(query(params))
    items = [
        {"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}
        for c in found.items
    ]
    return page("EndpointConfigs", items, found.next_token)


def delete_endpoint_config(ctx: ControlContext, params: dict[str, Any]) -> Result:
    ctx.store.delete_config(params["EndpointConfigName"])
    return Result()


def config_record(ctx: ControlContext, name: str) -> ConfigRecord:
    record = ctx.store.get_config(name)
    if record is None:
        raise ValidationException(f'Could not find endpoint configuration "{name}".')
    return record


def model_record(ctx: ControlContext, name: str) -> ModelRecord:
    record = ctx.store.get_model(name)
    if record is None:
        raise ValidationException(f'Could not find model "{name}".')
    return record


def _model_summary(model: ModelRecord) -> dict[str, Any]:
    return {"ModelName": model.name, "ModelArn": model.arn, "CreationTime": model.created}


def _check_image(path: tuple[str | int, ...], container: dict[str, Any]) -> None:
    env = container.get("Environment", {})
    if container.get("Image") is None and COMMAND_ENV not in env:
        raise ValidationException(
            f"1 validation error detected: Value null at '{member_path(*path, 'Image')}' failed "
            "to satisfy constraint: Member must not be null (or give the command to run in the "
            f"{COMMAND_ENV} environment variable)"
        )


def _confine(ctx: ControlContext, path: tuple[str | int, ...], container: dict[str, Any]) -> None:
    """Model data under the allowed roots; local paths made absolute in place."""
    source = container.get("ModelDataSource", {}).get("S3DataSource")
    if container.get("ModelDataUrl") is not None and source is not None:
        raise ValidationException(
            f"{member_path(*path)}: give ModelDataUrl or ModelDataSource, not both."
        )
    if container.get("ModelDataUrl") is not None:
        at = member_path(*path, "ModelDataUrl")
        container["ModelDataUrl"] = check_model_data(
            container["ModelDataUrl"], ctx.model_roots, member=at, forbidden=ctx.forbidden
        )
    elif source is not None:
        at = member_path(*path, "ModelDataSource", "S3DataSource", "S3Uri")
        source["S3Uri"] = check_model_data(
            source["S3Uri"], ctx.model_roots, member=at, forbidden=ctx.forbidden
        )


def _check_code(
    ctx: ControlContext, path: tuple[str | int, ...], container: dict[str, Any]
) -> None:
    """The user's code as SageMaker's framework containers take it: ``SAGEMAKER_SUBMIT_DIRECTORY``
    under the allowed roots (a local one made absolute), ``SAGEMAKER_PROGRAM`` a file name."""
    env = container.get("Environment") or {}
    program = env.get(PROGRAM_ENV)
    if program is not None and (
        not program.strip() or "/" in program or "\\" in program or not program.strip(".")
    ):
        raise ValidationException(
            f"{member_path(*path, 'Environment')}.{PROGRAM_ENV}: {program[:100]!r} must be the "
            "file name of the entry point in the code folder (e.g. inference.py), not a path"
        )
    submit = env.get(SUBMIT_ENV)
    if submit is not None:
        at = f"{member_path(*path, 'Environment')}.{SUBMIT_ENV}"
        env[SUBMIT_ENV] = check_model_data(submit, ctx.model_roots, member=at)


def _store_container(
    request: dict[str, Any], path: tuple[str | int, ...], container: dict[str, Any]
) -> None:
    if path[0] == "PrimaryContainer":
        request["PrimaryContainer"] = container
    else:
        request["Containers"][path[1]] = container
