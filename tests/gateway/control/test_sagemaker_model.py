"""A model made for SageMaker runs unchanged: its image URI, its model.tar.gz on S3, its code.

A real ``tandem serve``, the moto S3 server, a scikit-learn model trained now on synthetic data and
packed the way SageMaker's scikit-learn container expects (``model.joblib`` plus
``code/inference.py``), created and invoked through boto3's ``sagemaker`` and
``sagemaker-runtime`` clients, the waiter included. Then the code apart from the model, as the
SageMaker SDK ships it (``SAGEMAKER_SUBMIT_DIRECTORY``, ``SAGEMAKER_PROGRAM``): the user's code
answers, a program or code that is not there fails the endpoint saying which, and a failing
request's ``LogStreamArn`` is a CloudWatch Logs stream holding the container's trace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

import boto3
from botocore.config import Config

from tests.gateway.multimodel.archives import write_tar
from tests.gateway.multimodel.stores import csv_body, pack, predictions, synthetic, train_classifier
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON, free_port, running

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
#: SageMaker's handler functions: the answer is P(class 1) for each row, not the label.
INFERENCE = """
import os
import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    with moto_s3(tmp_path, "models") as (s3_url, s3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**CREDENTIALS, "TANDEM_S3_ENDPOINT_URL": s3_url}
        args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(tmp_path / "state")]
        args += ["--port", str(port)]
        with running(args, env=env, url=url, log=tmp_path / "gateway.log", timeout=60):
            yield url, s3


def test_a_sagemaker_sklearn_model_from_s3_with_its_own_code(
    tmp_path: Path, served: tuple[str, Any]
) -> None:
    url, s3 = served
    model = train_classifier(21)
    archive = pack(tmp_path / "model.tar.gz", model, code=INFERENCE)
    s3.put_object(Bucket="models", Key="churn/v1/model.tar.gz", Body=archive.read_bytes())
    keys = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    config = Config(retries={"max_attempts": 0})
    sm = boto3.client("sagemaker", endpoint_url=url, config=config, **keys)
    sm.create_model(
        ModelName="churn-v1",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://models/churn/v1/model.tar.gz"},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/ignored",
    )
    sm.create_endpoint_config(
        EndpointConfigName="churn-v1",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "churn-v1", "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn", WaiterConfig={"Delay": 0.25, "MaxAttempts": 480}
    )
    rows = synthetic(5, seed=4)
    runtime = boto3.client("sagemaker-runtime", endpoint_url=url, config=config, **keys)
    answer = runtime.invoke_endpoint(
        EndpointName="churn", Body=csv_body(rows), ContentType="text/csv", Accept="application/json"
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    got = predictions(answer["Body"].read())
    assert got == pytest.approx(model.predict_proba(rows)[:, 1].tolist())


ENTRY = """
import joblib, os


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    print("tandem-entry: predicting", data.shape, flush=True)
    if data.shape[1] != 20:
        raise ValueError(f"serve_entry wants 20 features, got {data.shape[1]}")
    return model.predict_proba(data)[:, 1]
"""
KEYS: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "x",
    "aws_secret_access_key": "x",
}


def client(service: str, url: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, config=Config(retries={"max_attempts": 0}), **KEYS
    )


def settle(sm: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating"):
            return described
        assert time.monotonic() < deadline, f"{name} still {described['EndpointStatus']}"
        time.sleep(0.2)


def deploy(sm: Any, name: str, environment: dict[str, str]) -> dict[str, Any]:
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": "s3://models/train/model.tar.gz",
            "Environment": environment,
        },
        ExecutionRoleArn="arn:aws:iam::000000000000:role/ignored",
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return settle(sm, name)


def test_code_from_the_submit_directory(tmp_path: Path, served: tuple[str, Any]) -> None:
    url, s3 = served
    model = train_classifier(5)
    s3.put_object(
        Bucket="models",
        Key="train/model.tar.gz",
        Body=pack(tmp_path / "model.tar.gz", model).read_bytes(),
    )
    code = write_tar(tmp_path / "sourcedir.tar.gz", {"serve_entry.py": ENTRY.encode()})
    s3.put_object(Bucket="models", Key="code/sourcedir.tar.gz", Body=code.read_bytes())
    sm, runtime, logs = (
        client("sagemaker", url),
        client("sagemaker-runtime", url),
        client("logs", url),
    )
    submitted = "s3://models/code/sourcedir.tar.gz"

    good = deploy(
        sm, "good", {"SAGEMAKER_PROGRAM": "serve_entry.py", "SAGEMAKER_SUBMIT_DIRECTORY": submitted}
    )
    assert good["EndpointStatus"] == "InService", good.get("FailureReason")
    rows = synthetic(3, seed=6)
    answer = runtime.invoke_endpoint(
        EndpointName="good", Body=csv_body(rows), ContentType="text/csv"
    )
    got = json.loads(answer["Body"].read())
    assert got == pytest.approx(model.predict_proba(rows)[:, 1].tolist())  # not labels

    # inference.py is the default name, but named with code apart: it must be there.
    missing = deploy(
        sm,
        "missing",
        {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": submitted},
    )
    assert missing["EndpointStatus"] == "Failed"
    assert "SAGEMAKER_PROGRAM='inference.py' cannot be found" in missing["FailureReason"]
    assert "serve_entry.py" in missing["FailureReason"]  # what the folder holds instead

    absent = "s3://models/code/nope.tar.gz"
    nocode = deploy(
        sm, "nocode", {"SAGEMAKER_PROGRAM": "serve_entry.py", "SAGEMAKER_SUBMIT_DIRECTORY": absent}
    )
    assert nocode["EndpointStatus"] == "Failed"
    assert "SAGEMAKER_SUBMIT_DIRECTORY" in nocode["FailureReason"]
    assert "nope.tar.gz" in nocode["FailureReason"]

    # A failing request names the stream; CloudWatch Logs on the same port has the trace.
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName="good", Body=b"1,2,3\n", ContentType="text/csv")
    arn = info.value.response["LogStreamArn"]
    group, stream = arn.split(":log-group:", 1)[1].split(":log-stream:")
    assert group == "/aws/sagemaker/Endpoints/good"
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    text = "\n".join(e["message"] for e in events["events"])
    assert "serve_entry wants 20 features, got 3" in text
