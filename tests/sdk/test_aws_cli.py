"""The AWS CLI (v1), unchanged, through a whole endpoint's life on Tandem, its logs included.

The CLI runs from the SDK's environment (it pins its own botocore), pointed at the gateway by
``AWS_ENDPOINT_URL_*``: create the model (code uploaded as SageMaker's SDK would, with
``SAGEMAKER_SUBMIT_DIRECTORY``), the config and the endpoint, invoke it, read its container's
log stream, then delete it all in the order the platform allows today.
"""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

from tests.sdk.conftest import BUCKET, ENTRY_POINT, MODEL_DATA, ROLE, Stack, rows

pytestmark = [pytest.mark.slow, pytest.mark.sklearn]

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def status(stack: Stack, endpoint: str) -> str:
    done = stack.cli("sagemaker", "describe-endpoint", "--endpoint-name", endpoint, check=False)
    if done.returncode != 0:
        assert "Could not find endpoint" in done.stderr, done.stderr
        return "Gone"
    return str(json.loads(done.stdout)["EndpointStatus"])


def wait_for(stack: Stack, endpoint: str, wanted: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (now := status(stack, endpoint)) != wanted:
        assert now not in ("Failed",), stack.cli(
            "sagemaker", "describe-endpoint", "--endpoint-name", endpoint
        ).stdout
        assert time.monotonic() < deadline, f"{endpoint} is {now}, not {wanted}, after {timeout}s"
        time.sleep(0.5)


def test_the_aws_cli_lifecycle_with_logs(stack: Stack) -> None:
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w:gz") as tar:
        tar.add(stack.source_dir, arcname=".")
    stack.s3.put_object(Bucket=BUCKET, Key="cli/sourcedir.tar.gz", Body=code.getvalue())
    container = {
        "Image": IMAGE,
        "ModelDataUrl": MODEL_DATA,
        "Environment": {
            "SAGEMAKER_PROGRAM": ENTRY_POINT,
            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/cli/sourcedir.tar.gz",
        },
    }
    (stack.folder / "container.json").write_text(json.dumps(container))
    stack.cli(
        "sagemaker", "create-model", "--model-name", "cli-model",
        "--primary-container", "file://container.json", "--execution-role-arn", ROLE,
    )  # fmt: skip
    stack.cli(
        "sagemaker", "create-endpoint-config", "--endpoint-config-name", "cli-config",
        "--production-variants",
        "VariantName=AllTraffic,ModelName=cli-model,InitialInstanceCount=1,InstanceType=ml.m5.large",
    )  # fmt: skip
    stack.cli(
        "sagemaker", "create-endpoint", "--endpoint-name", "cli-endpoint",
        "--endpoint-config-name", "cli-config",
    )  # fmt: skip
    wait_for(stack, "cli-endpoint", "InService")

    sent = rows(3, seed=15)
    (stack.folder / "rows.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in sent))
    stack.cli(
        "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "cli-endpoint",
        "--content-type", "text/csv", "--accept", "application/json",
        "--body", "fileb://rows.csv", "answer.json",
    )  # fmt: skip
    answer = json.loads((stack.folder / "answer.json").read_text())
    expected = stack.model.predict_proba(sent)[:, 1].tolist()
    assert answer["probabilities"] == pytest.approx(expected)

    group = "/aws/sagemaker/Endpoints/cli-endpoint"
    streams = json.loads(
        stack.cli("logs", "describe-log-streams", "--log-group-name", group).stdout
    )["logStreams"]
    assert [s["logStreamName"].split("/")[0] for s in streams] == ["AllTraffic"]
    events = json.loads(
        stack.cli(
            "logs", "get-log-events", "--log-group-name", group,
            "--log-stream-name", streams[0]["logStreamName"], "--start-from-head",
        ).stdout
    )["events"]  # fmt: skip
    assert any("tandem-sdk-test: model_fn loads model.joblib" in e["message"] for e in events)
    missing = stack.cli(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "nope",
        check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr

    stack.cli("sagemaker", "delete-endpoint", "--endpoint-name", "cli-endpoint")
    wait_for(stack, "cli-endpoint", "Gone")
    stack.cli("sagemaker", "delete-endpoint-config", "--endpoint-config-name", "cli-config")
    stack.cli("sagemaker", "delete-model", "--model-name", "cli-model")
    left = json.loads(stack.cli("sagemaker", "list-models", "--name-contains", "cli-").stdout)
    assert left["Models"] == []
