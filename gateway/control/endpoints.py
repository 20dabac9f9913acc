"""``*Endpoint``: the desired state is written here; the reconciler makes it so, then reports.

``CreateEndpoint`` writes ``Creating``, ``UpdateEndpoint`` ``Updating`` (the pending config beside
the serving one), ``DeleteEndpoint`` ``Deleting``; each then kicks the reconciler. The reconciler
writes ``InService``, ``Failed`` with a reason, the end of an update (or its rollback) and the
row's removal through the store. As on SageMaker, only an ``InService`` endpoint can be updated;
a ``Failed`` one is deleted and created again. Deleting is accepted in any status.
"""

from __future__ import annotations

from typing import Any

from gateway.control.context import Context, Result, page, query
from gateway.control.errors import ValidationException
from gateway.control.models import config_record, model_record
from gateway.control.translate import containers_of, instance_count, to_spec
from gateway.state import ConfigRecord, EndpointRecord, EndpointStatus, WrongState
from pipelines.spec import EndpointSpec

#: Statuses in which the endpoint's containers run (and answer, for the runtime API).
RUNNING = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING})


def spec_for(ctx: Context, endpoint: str, config: ConfigRecord) -> EndpointSpec:
    """The spec that ``endpoint`` runs under ``config``: one variant, its model's containers."""
    (model_name,) = config.models.values()
    return to_spec(endpoint, model_record(ctx, model_name).request, config.request)


def create_endpoint(ctx: Context, params: dict[str, Any]) -> Result:
    name = params["EndpointName"]
    config = config_record(ctx, params["EndpointConfigName"])
    spec_for(ctx, name, config)
    record = ctx.store.add_endpoint(name, ctx.arn("endpoint", name), config.name, params)
    return Result({"EndpointArn": record.arn}, kick=[record.name])


def update_endpoint(ctx: Context, params: dict[str, Any]) -> Result:
    name = params["EndpointName"]
    current = endpoint_record(ctx, name)
    config = config_record(ctx, params["EndpointConfigName"])
    spec_for(ctx, current.name, config)
    try:
        record = ctx.store.begin_update(name, config.name)
    except WrongState as exc:
        if exc.status == EndpointStatus.FAILED:
            raise ValidationException(
                f'Cannot update failed endpoint "{current.arn}"; delete it and create it again.'
            ) from exc
        raise ValidationException(
            f'Cannot update in-progress endpoint "{current.arn}" (it is {exc.status}).'
        ) from exc
    return Result({"EndpointArn": record.arn}, kick=[record.name])


def delete_endpoint(ctx: Context, params: dict[str, Any]) -> Result:
    record = ctx.store.begin_delete(params["EndpointName"])
    return Result(kick=[record.name])


def describe_endpoint(ctx: Context, params: dict[str, Any]) -> Result:
    record = endpoint_record(ctx, params["EndpointName"])
    body: dict[str, Any] = {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "EndpointConfigName": record.config,
        "EndpointStatus": record.status.value,
        "CreationTime": record.created,
        "LastModifiedTime": record.modified,
    }
    config = ctx.store.get_config(record.config)
    if config is not None:
        body["ProductionVariants"] = _variants(ctx, config, record.status in RUNNING)
    if record.failure_reason is not None:
        body["FailureReason"] = record.failure_reason
    if record.pending_config is not None:
        pending = ctx.store.get_config(record.pending_config)
        body["PendingDeploymentSummary"] = {
            "EndpointConfigName": record.pending_config,
            "StartTime": record.update_started,
            "ProductionVariants": [] if pending is None else _variants(ctx, pending, False),
        }
    return Result(body)


def list_endpoints(ctx: Context, params: dict[str, Any]) -> Result:
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


def endpoint_record(ctx: Context, name: str) -> EndpointRecord:
    record = ctx.store.get_endpoint(name)
    if record is None:
        raise ValidationException(f'Could not find endpoint "{name}".')
    return record


def _variants(ctx: Context, config: ConfigRecord, running: bool) -> list[dict[str, Any]]:
    count = instance_count(config.request)
    out = []
    for variant, model_name in config.models.items():
        model = ctx.store.get_model(model_name)
        images = [] if model is None else [c.get("Image") for _, c in containers_of(model.request)]
        out.append(
            {
                "VariantName": variant,
                "DeployedImages": [{"SpecifiedImage": i} for i in images if i],
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
                "CurrentInstanceCount": count if running else 0,
                "DesiredInstanceCount": count,
            }
        )
    return out
