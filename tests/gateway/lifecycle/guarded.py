"""A real ``tandem serve`` with two versions of a real scikit-learn model, for guarded updates.

Version 1 answers ``1`` to every row, version 2 answers ``2`` (``DummyClassifier`` trained now),
so the share of the traffic on the new fleet is counted from the answers. ``Load`` invokes the
endpoint from a few threads through boto3 and keeps every answer and every failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
from botocore.config import Config
from sklearn.dummy import DummyClassifier

from tests.support import PYTHON, free_port, running, wait_until

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
CONFIG = Config(retries={"max_attempts": 0}, read_timeout=60, connect_timeout=5)
ROW = b"0.5,0.5\n"


def train(folder: Path, answer: int) -> Path:
    """A model that answers ``answer`` to every row, in ``folder/model.joblib``."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros((4, 2))
    model = DummyClassifier(strategy="constant", constant=answer).fit(x, [answer, 0, 0, 0])
    joblib.dump(model, folder / "model.joblib")
    return folder


@dataclass
class Gateway:
    url: str
    state: Path
    proc: Any
    sm: Any = field(init=False)
    cw: Any = field(init=False)
    runtime: Any = field(init=False)

    def __post_init__(self) -> None:
        for attr, service in (("sm", "sagemaker"), ("cw", "cloudwatch"),
                              ("runtime", "sagemaker-runtime")):  # fmt: skip
            setattr(self, attr, boto3.client(service, endpoint_url=self.url, config=CONFIG, **KEYS))

    def answer(self, endpoint: str = "ep") -> str:
        got = self.runtime.invoke_endpoint(EndpointName=endpoint, Body=ROW, ContentType="text/csv")
        return str(got["Body"].read().decode().strip().strip("[]").split(",")[0].strip())

    def status(self, endpoint: str = "ep") -> dict[str, Any]:
        return dict(self.sm.describe_endpoint(EndpointName=endpoint))

    def wait_status(
        self, wanted: str, endpoint: str = "ep", timeout: float = 180
    ) -> dict[str, Any]:
        return wait_until(
            lambda: (d := self.status(endpoint))["EndpointStatus"] == wanted and d,
            timeout=timeout,
            interval=0.1,
            what=f"{endpoint} {wanted}",
        )

    def stage(self, text: str, endpoint: str = "ep", timeout: float = 180) -> dict[str, Any]:
        """Wait until a stage of the pending deployment (of the last five) says ``text``."""

        def check() -> dict[str, Any] | None:
            pending = self.status(endpoint).get("PendingDeploymentSummary")
            stages = pending["ProductionVariants"][0]["VariantStatus"] if pending else []
            found = [s for s in stages if text in s.get("StatusMessage", "")]
            return dict(found[-1]) if found else None

        return wait_until(check, timeout=timeout, interval=0.05, what=f"stage {text!r}")

    def setup(self, models: dict[str, Path], instances: int = 1) -> None:
        """A model and a config per version (``v1``, ``v2``), the endpoint ``ep`` on ``v1``."""
        for name, folder in models.items():
            self.sm.create_model(
                ModelName=name,
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(folder)},
                ExecutionRoleArn=ROLE,
            )
            self.sm.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                     "InitialInstanceCount": instances,
                                     "InstanceType": "ml.m5.large"}],
            )  # fmt: skip
        self.sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
        self.wait_status("InService")

    def alarm(self, name: str = "ep-errors") -> str:
        self.cw.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
            Dimensions=[{"Name": "EndpointName", "Value": "ep"},
                        {"Name": "VariantName", "Value": "AllTraffic"}],
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )  # fmt: skip
        return name


def models(tmp_path: Path) -> dict[str, Path]:
    return {"v1": train(tmp_path / "models" / "v1", 1), "v2": train(tmp_path / "models" / "v2", 2)}


@contextlib.contextmanager
def gateway(tmp_path: Path, state: Path | None = None, log: str = "gateway") -> Iterator[Gateway]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = state or tmp_path / "state"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    env = {"TANDEM_MODEL_ROOTS": str(tmp_path / "models")}
    with running(args, env=env, url=url, log=tmp_path / f"{log}.log", timeout=120) as proc:
        yield Gateway(url, state, proc)


class Load:
    """Invokes ``ep`` from ``threads`` threads while running: (time, answer) and failures."""

    def __init__(self, gw: Gateway, threads: int = 3) -> None:
        self.gw = gw
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append((time.monotonic(), self.gw.answer()))
            except Exception as exc:  # every failure is counted: none is expected
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def between(self, start: float, end: float) -> list[str]:
        return [a for t, a in list(self.answers) if start <= t <= end]


def canary(wait: int, percent: int = 25, termination: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": percent},
                "WaitIntervalInSeconds": wait,
            },
            "TerminationWaitInSeconds": termination,
        },
        **extra,
    }
