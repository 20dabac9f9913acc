"""A model made for SageMaker runs unchanged: its image URI, its model.tar.gz on S3, its code.

A real ``tandem serve``, the moto S3 server, a scikit-learn model trained now on synthetic data and
packed the way SageMaker's scikit-learn container expects (``model.joblib`` plus
``code/inference.py``), created and invoked through boto3's ``sagemaker`` and
``sagemaker-runtime`` clients, the waiter included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

import boto3
from botocore.config import Config

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
