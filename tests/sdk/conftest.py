"""One stack for the client tests: the moto S3 server, a real ``tandem serve``, a trained model.

The SageMaker SDK and the AWS CLI run in their own environment (``tests/sdk/venv.py``) as a user
would run them: pointed at Tandem by ``AWS_ENDPOINT_URL_*`` (SageMaker, its runtime and CloudWatch
Logs at the gateway; S3 and STS at moto), fake credentials, a region, a role ARN.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("moto")

from tests.gateway.multimodel.stores import pack, synthetic, train_classifier
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.sdk.venv import VENV, sdk_python
from tests.support import PYTHON, free_port, running

FLOWS = Path(__file__).parent / "flows"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
BUCKET = "models"
#: The SDK's settings file: the bucket it uploads code and data to (else it asks AWS STS for the
#: account), and no telemetry (its request to AWS has no timeout: offline, it hangs ~2 minutes).
SDK_CONFIG = f"""SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      Session:
        DefaultS3Bucket: {BUCKET}
      TelemetryOptOut: true
"""
#: The training job's archive: the model alone, no code/ (the code comes with the SDK's upload).
MODEL_DATA = f"s3://{BUCKET}/train/model.tar.gz"
#: The user's code (``source_dir``): an entry point that is not inference.py, with a helper.
ENTRY_POINT = "serve_entry.py"
SOURCE = {
    ENTRY_POINT: """
import io
import json
import os

import joblib
import numpy as np

from shaping import rows_of


def model_fn(model_dir):
    print("tandem-sdk-test: model_fn loads model.joblib", flush=True)
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(body, content_type):
    return rows_of(body, content_type)


def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]


def output_fn(prediction, accept):
    if accept == "text/csv":
        return "".join(f"{p}\\n" for p in prediction.tolist()), "text/csv"
    return json.dumps({"probabilities": prediction.tolist()}), "application/json"
""",
    "shaping.py": """
import io
import json

import numpy as np


def rows_of(body, content_type):
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    if content_type == "text/csv":
        return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
    if content_type == "application/json":
        return np.asarray(json.loads(text), dtype=float)
    raise ValueError(f"unsupported content type {content_type}")
""",
}


@dataclass
class Stack:
    gateway: str
    s3_url: str
    s3: Any
    folder: Path
    python: Path
    source_dir: Path
    model: Any

    @property
    def env(self) -> dict[str, str]:
        """What a user sets to point the SDK and the CLI at Tandem (and nothing of ours)."""
        return {
            "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
            "HOME": str(self.folder / "home"),
            **CREDENTIALS,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.gateway,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.gateway,
            # botocore names the variable after the service id, "CloudWatch Logs".
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.gateway,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_CONFIG_FILE": str(self.folder / "home" / "aws-config"),
            # The SDK's own settings file: its default bucket (else it asks STS for the account).
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(self.folder / "home" / "sagemaker.yaml"),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "ROLE_ARN": ROLE,
        }

    def flow(self, script: str, **args: Any) -> tuple[dict[str, Any], str]:
        """Run ``flows/<script>`` with the SDK: its ``RESULT`` line, and everything it printed."""
        done = subprocess.run(
            [str(self.python), str(FLOWS / script), json.dumps(args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.folder,
        )
        out = done.stdout + done.stderr
        if done.returncode != 0:
            log = (self.folder / "gateway.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"{script} failed:\n{out[-6000:]}\n--- gateway log ---\n{log}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"{script} printed no RESULT line:\n{out[-4000:]}"
        return json.loads(lines[-1].removeprefix("RESULT ")), out

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The AWS CLI (v1, from the SDK's environment) with the same settings."""
        done = subprocess.run(
            [str(VENV / "bin" / "aws"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.folder,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    python = sdk_python()
    folder = tmp_path_factory.mktemp("sdk")
    (folder / "home").mkdir()
    (folder / "home" / "aws-config").write_text("[default]\nregion = us-east-1\n")
    (folder / "home" / "sagemaker.yaml").write_text(SDK_CONFIG)
    source_dir = folder / "source"
    source_dir.mkdir()
    for name, text in SOURCE.items():
        (source_dir / name).write_text(text)
    model = train_classifier(7)
    archive = pack(folder / "model.tar.gz", model)
    with moto_s3(folder, BUCKET) as (s3_url, s3):
        s3.put_object(Bucket=BUCKET, Key="train/model.tar.gz", Body=archive.read_bytes())
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**CREDENTIALS, "TANDEM_S3_ENDPOINT_URL": s3_url}
        args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(folder / "state")]
        with running(
            [*args, "--port", str(port)], env=env, url=url, log=folder / "gateway.log", timeout=60
        ):
            yield Stack(url, s3_url, s3, folder, python, source_dir, model)


def rows(n: int, seed: int) -> list[list[float]]:
    return [[round(v, 6) for v in row] for row in synthetic(n, seed=seed).tolist()]
