"""Single-model containers whose ``model_data`` is in S3, served by a real ``tandem serve``.

The S3 protocol server is moto's on loopback; the models are trained now on synthetic data, one
packed as SageMaker's ``model.tar.gz``, one left as a prefix of files (SageMaker's uncompressed
model data), and every answer comes through the real boto3 client.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tests.gateway.harness import sagemaker_client
from tests.gateway.multimodel.stores import (
    csv_body,
    gateway,
    model_bytes,
    pack,
    predictions,
    synthetic,
    train_classifier,
    write_spec,
)
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import PYTHON, ROOT, free_port

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

BUCKET = "single"
X = synthetic(6, seed=3)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with moto_s3(tmp_path_factory.mktemp("moto"), BUCKET) as server:
        yield server


def sklearn_from(model_data: str) -> dict[str, Any]:
    return {"model": {"framework": "sklearn", "model_data": model_data}}


def test_model_data_from_an_s3_archive_and_prefix(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    packed, unpacked = train_classifier(11), train_classifier(12)
    archive = pack(tmp_path / "model.tar.gz", packed)
    client.put_object(Bucket=BUCKET, Key="churn/model.tar.gz", Body=archive.read_bytes())
    client.put_object(Bucket=BUCKET, Key="churn-files/model.joblib", Body=model_bytes(unpacked))
    specs = [
        write_spec(tmp_path, "packed", "Serial", sklearn_from(f"s3://{BUCKET}/churn/model.tar.gz")),
        write_spec(tmp_path, "unpacked", "Serial", sklearn_from(f"s3://{BUCKET}/churn-files/")),
    ]
    env = {**CREDENTIALS, "TANDEM_S3_ENDPOINT_URL": url}
    with gateway(tmp_path, *specs, env=env) as (gw, _):
        runtime = sagemaker_client(gw)
        for name, model in (("packed", packed), ("unpacked", unpacked)):
            answer = runtime.invoke_endpoint(
                EndpointName=name, ContentType="text/csv", Body=csv_body(X)
            )
            assert predictions(answer["Body"].read()) == model.predict(X).tolist(), name


def test_a_missing_object_exits_1_naming_the_url(tmp_path: Path, s3: tuple[str, Any]) -> None:
    missing = f"s3://{BUCKET}/nowhere/model.tar.gz"
    spec = write_spec(tmp_path, "absent", "Serial", sklearn_from(missing))
    args = [PYTHON, "-m", "gateway", "serve", str(spec)]
    args += ["--state-dir", str(tmp_path / "state"), "--port", str(free_port())]
    env = {**CREDENTIALS, "TANDEM_S3_ENDPOINT_URL": s3[0]}
    result = subprocess.run(
        args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert f"absent/model: model_data: {missing}: no such object or prefix" in result.stderr
    assert "Traceback" not in result.stderr
