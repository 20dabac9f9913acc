"""``*TransformJob``: jobs as state; the batch runner (behind the ``JobRunner`` hook) runs them.

``job_options`` is the one mapping from ``CreateTransformJob`` to the batch runner's settings
(``gateway.batch.config.BatchConfig`` field names). Input and output may be ``s3://``,
``file://`` or local folders, confined to the model roots like model data. ``DescribeTransformJob``
also answers a ``Progress`` member, Tandem's own (what the runner last reported; boto3 ignores
members its model does not know, raw JSON clients and ``tandem`` read it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.control.context import ControlContext, Result, page, query, unsupported
from gateway.control.models import model_record
from gateway.control.translate import check_model_data
from gateway.errors import ResourceNotFound, ValidationException
from gateway.state import JobRecord, WrongState
from pipelines.errors import TandemError

_UNSUPPORTED = {"DataCaptureConfig": "batch data capture comes later"}
_DESCRIBED = (
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "TransformResources",
    "DataProcessing",
    "ExperimentConfig",
)


def job_options(request: Mapping[str, Any]) -> dict[str, Any]:
    """``CreateTransformJob`` as the batch runner's settings (unset ones left out)."""
    source = request["TransformInput"]
    output = request["TransformOutput"]
    options: dict[str, Any] = {
        "input": source["DataSource"]["S3DataSource"]["S3Uri"],
        "output": output["S3OutputPath"],
        "split_type": source.get("SplitType", "None"),
        "assemble_with": output.get("AssembleWith", "None"),
    }
    optional = {
        "batch_strategy": request.get("BatchStrategy"),
        # SageMaker's 0 means "no limit / the container's choice": leave it to the runner.
        "max_payload_mb": request.get("MaxPayloadInMB") or None,
        "max_concurrent": request.get("MaxConcurrentTransforms") or None,
        "content_type": source.get("ContentType"),
        "accept": output.get("Accept"),
        "timeout": request.get("ModelClientConfig", {}).get("InvocationsTimeoutInSeconds"),
        "retries": request.get("ModelClientConfig", {}).get("InvocationsMaxRetries"),
    }
    processing = request.get("DataProcessing", {})
    optional["input_filter"] = processing.get("InputFilter")
    optional["output_filter"] = processing.get("OutputFilter")
    optional["join_source"] = processing.get("JoinSource")
    options.update({k: v for k, v in optional.items() if v is not None})
    return options


def create_transform_job(ctx: ControlContext, params: dict[str, Any]) -> Result:
    name = params["TransformJobName"]
    unsupported(params, _UNSUPPORTED)
    source = params["TransformInput"]
    s3 = source["DataSource"]["S3DataSource"]
    if s3["S3DataType"] != "S3Prefix":
        raise ValidationException(
            f"transformInput.dataSource.s3DataSource.s3DataType: {s3['S3DataType']} is not "
            "supported by Tandem yet; use S3Prefix (a folder or prefix of input files)."
        )
    if source.get("SplitType", "None") not in ("None", "Line"):
        raise ValidationException(
            f"transformInput.splitType: {source['SplitType']} is not supported by Tandem yet; "
            "use None or Line."
        )
    if source.get("CompressionType", "None") != "None":
        raise ValidationException(
            "transformInput.compressionType: Gzip input is not supported by Tandem yet."
        )
    model_record(ctx, params["ModelName"])
    s3["S3Uri"] = check_model_data(
        s3["S3Uri"],
        ctx.model_roots,
        member="transformInput.dataSource.s3DataSource.s3Uri",
        forbidden=ctx.forbidden,
    )
    output = params["TransformOutput"]
    output["S3OutputPath"] = check_model_data(
        output["S3OutputPath"],
        ctx.model_roots,
        member="transformOutput.s3OutputPath",
        exist=False,
        forbidden=ctx.forbidden,
    )
    if ctx.check_job is not None:
        try:
            ctx.check_job(job_options(params))
        except TandemError as exc:
            raise ValidationException(f"Transform job {name}: {exc}") from exc
    record = ctx.store.add_job(name, ctx.arn("transform-job", name), params["ModelName"], params)
    return Result({"TransformJobArn": record.arn}, start_jobs=[record.name])


def describe_transform_job(ctx: ControlContext, params: dict[str, Any]) -> Result:
    record = ctx.store.get_job(params["TransformJobName"])
    if record is None:
        raise ResourceNotFound(f'Could not find transform job "{params["TransformJobName"]}".')
    body: dict[str, Any] = {
        "TransformJobName": record.name,
        "TransformJobArn": record.arn,
        "TransformJobStatus": record.status.value,
        "ModelName": record.model,
        "CreationTime": record.created,
        **{k: record.request[k] for k in _DESCRIBED if k in record.request},
        "Progress": record.progress,
    }
    if record.failure_reason is not None:
        body["FailureReason"] = record.failure_reason
    if record.started is not None:
        body["TransformStartTime"] = record.started
    if record.ended is not None:
        body["TransformEndTime"] = record.ended
    return Result(body)


def list_transform_jobs(ctx: ControlContext, params: dict[str, Any]) -> Result:
    found = ctx.store.list_jobs(query(params, modified=True, status=True))
    return page("TransformJobSummaries", [_summary(j) for j in found.items], found.next_token)


def stop_transform_job(ctx: ControlContext, params: dict[str, Any]) -> Result:
    try:
        record = ctx.store.request_stop(params["TransformJobName"])
    except WrongState as exc:
        raise ValidationException(
            f'Transform job "{exc.name}" has already finished ({exc.status}); only an '
            "InProgress job can be stopped."
        ) from exc
    return Result(stop_jobs=[record.name])


def _summary(job: JobRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TransformJobName": job.name,
        "TransformJobArn": job.arn,
        "CreationTime": job.created,
        "LastModifiedTime": job.modified,
        "TransformJobStatus": job.status.value,
    }
    if job.ended is not None:
        out["TransformEndTime"] = job.ended
    if job.failure_reason is not None:
        out["FailureReason"] = job.failure_reason
    return out
