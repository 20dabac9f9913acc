"""Transform jobs as state: create, describe (with progress), list, stop, and boto3's waiter."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from gateway.state import JobStatus
from pipelines.errors import TandemError
from tests.gateway.control.conftest import FAST, World, wait_in_thread


def job(world: World, name: str = "j", **extra: Any) -> dict[str, Any]:
    inputs = world.model_dir.parent.parent / "in"
    inputs.mkdir(exist_ok=True)
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(inputs)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": str(world.model_dir.parent.parent / "out"),
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "Environment": {"EXTRA": "1"},
        "MaxConcurrentTransforms": 4,
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 30, "InvocationsMaxRetries": 1},
        **extra,
    }
    return request


def test_a_job_runs_to_completion_under_the_waiter(world: World) -> None:
    world.model()
    arn = world.sm.create_transform_job(**job(world))["TransformJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:transform-job/j"
    assert world.runner.started == ["j"]
    got = world.sm.describe_transform_job(TransformJobName="j")
    assert got["TransformJobStatus"] == "InProgress" and got["ModelName"] == "m"
    assert got["TransformInput"]["SplitType"] == "Line" and "TransformStartTime" in got
    world.store.set_job_progress("j", {"records": 7, "bytes": 70, "total_bytes": 100})
    raw = httpx.post(
        world.url,
        json={"TransformJobName": "j"},
        headers={
            "X-Amz-Target": "SageMaker.DescribeTransformJob",
            "Content-Type": "application/x-amz-json-1.1",
        },
        timeout=30,
    )
    assert raw.json()["Progress"] == {"records": 7, "bytes": 70, "total_bytes": 100}

    thread, outcome = wait_in_thread(
        world, "transform_job_completed_or_stopped", TransformJobName="j"
    )
    world.store.set_job_status("j", JobStatus.COMPLETED, expect={JobStatus.IN_PROGRESS})
    thread.join(timeout=30)
    assert outcome == [None]
    done = world.sm.describe_transform_job(TransformJobName="j")
    assert done["TransformJobStatus"] == "Completed"
    assert done["TransformEndTime"] >= done["TransformStartTime"]


def test_stop_ends_a_job_and_the_waiter_sees_it(world: World) -> None:
    world.model()
    world.sm.create_transform_job(**job(world))
    world.sm.stop_transform_job(TransformJobName="j")
    assert world.runner.stopped == ["j"]
    world.sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="j", WaiterConfig=FAST
    )
    assert world.sm.describe_transform_job(TransformJobName="j")["TransformJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as err:
        world.sm.stop_transform_job(TransformJobName="j")
    assert "already finished (Stopped)" in err.value.response["Error"]["Message"]


def test_list_transform_jobs(world: World) -> None:
    world.model()
    for name in ("nightly-1", "nightly-2", "adhoc"):
        world.sm.create_transform_job(**job(world, name))
    world.store.set_job_status("nightly-1", JobStatus.FAILED, "file a.csv: ModelError")
    got = world.sm.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in got] == ["nightly-1"]
    assert got[0]["FailureReason"] == "file a.csv: ModelError" and "TransformEndTime" in got[0]
    by_name = world.sm.list_transform_jobs(NameContains="nightly", SortBy="Name")
    assert [j["TransformJobName"] for j in by_name["TransformJobSummaries"]] == [
        "nightly-2",
        "nightly-1",
    ]
    pages = world.sm.get_paginator("list_transform_jobs").paginate(
        SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    )
    assert [len(p["TransformJobSummaries"]) for p in pages] == [2, 1]


def test_the_runner_gets_its_spec_and_settings(world: World) -> None:
    world.model(Environment={"OWN": "x"})
    world.sm.create_transform_job(**job(world, DataProcessing={"JoinSource": "Input"}))
    plan = world.plane.job_plan("j")
    assert plan is not None and plan.spec.name == "j"
    assert plan.spec.containers[0].environment == {"OWN": "x", "EXTRA": "1"}
    root = world.model_dir.parent.parent
    assert plan.options == {
        "input": str(root / "in"),
        "output": str(root / "out"),
        "split_type": "Line",
        "assemble_with": "Line",
        "max_concurrent": 4,
        "content_type": "text/csv",
        "timeout": 30,
        "retries": 1,
        "join_source": "Input",
    }
    assert world.plane.job_plan("nope") is None


BAD = [
    ("unknown-model", {"ModelName": "nope"}, "ValidationException", 'Could not find model "nope"'),
    (
        "record-io",
        {"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
         "S3Uri": "s3://b/in"}}, "SplitType": "RecordIO"}},
        "ValidationException",
        "transformInput.splitType",
    ),
    (
        "manifest",
        {"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile",
         "S3Uri": "s3://b/in"}}}},
        "ValidationException",
        "transformInput.dataSource.s3DataSource.s3DataType",
    ),
    (
        "input-outside-roots",
        {"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
         "S3Uri": "/etc"}}}},
        "ValidationException",
        "transformInput.dataSource.s3DataSource.s3Uri",
    ),
    (
        "output-outside-roots",
        {"TransformOutput": {"S3OutputPath": "/var/tmp/out"}},
        "ValidationException",
        "transformOutput.s3OutputPath",
    ),
    (
        "existing-name",
        {"TransformJobName": "taken"},
        "ResourceInUse",
        "arn:aws:sagemaker:us-east-1:000000000000:transform-job/taken",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "code", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_jobs_change_nothing(
    world: World, extra: dict[str, Any], code: str, fragment: str
) -> None:
    world.model()
    world.sm.create_transform_job(**job(world, "taken"))
    before = world.snapshot()
    with pytest.raises(ClientError) as err:
        world.sm.create_transform_job(**{**job(world), **extra})
    assert err.value.response["Error"]["Code"] == code
    assert fragment in err.value.response["Error"]["Message"]
    assert world.snapshot() == before and world.runner.started == ["taken"]


def test_the_runners_own_check_refuses_a_job(world: World, tmp_path: Path) -> None:
    def check(options: Mapping[str, Any]) -> None:
        raise TandemError("join_source=Input needs content_type text/csv or JSON")

    world.plane.context = dataclasses.replace(world.plane.context, check_job=check)
    world.model()
    before = world.snapshot()
    with pytest.raises(ClientError) as err:
        world.sm.create_transform_job(**job(world))
    assert "join_source=Input" in err.value.response["Error"]["Message"]
    assert world.snapshot() == before


def test_an_unknown_job_is_resource_not_found(world: World) -> None:
    with pytest.raises(world.sm.exceptions.ResourceNotFound):
        world.sm.describe_transform_job(TransformJobName="nope")
    with pytest.raises(world.sm.exceptions.ResourceNotFound):
        world.sm.stop_transform_job(TransformJobName="nope")
