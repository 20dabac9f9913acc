"""A real ``tandem serve`` (process backend, the contract server as its container) driven by the
real boto3 ``application-autoscaling``, ``cloudwatch`` and ``sagemaker`` clients.

The gateway evaluates every 0.2 s and counts one second as a minute
(``TANDEM_AUTOSCALING_MINUTE=1``), so 3 datapoints above target take 3 s, not 3 minutes.
Load is a ``PutMetricData`` metric (``Shop/Load``) fed by a thread: the invocation path does not
feed the recorder on this branch yet.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON, free_port, running

KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
CONFIG = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
ENV = {
    "TANDEM_AUTOSCALING_INTERVAL": "0.2",
    "TANDEM_AUTOSCALING_MINUTE": "1",
    "TANDEM_METRIC_FLUSH_INTERVAL": "1",
}
RESOURCE = "endpoint/ep/variant/AllTraffic"
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RESOURCE,
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
LOAD = {"Namespace": "Shop/Load", "MetricName": "RequestsPerInstance"}


@dataclass
class Gateway:
    url: str
    state: Path
    proc: Any
    aas: Any = field(init=False)
    cw: Any = field(init=False)
    sm: Any = field(init=False)
    runtime: Any = field(init=False)

    def __post_init__(self) -> None:
        for attr, service in (("aas", "application-autoscaling"), ("cw", "cloudwatch"),
                              ("sm", "sagemaker"), ("runtime", "sagemaker-runtime")):  # fmt: skip
            setattr(self, attr, boto3.client(service, endpoint_url=self.url, config=CONFIG, **KEYS))

    def variant(self) -> dict[str, Any]:
        (variant,) = self.sm.describe_endpoint(EndpointName="ep")["ProductionVariants"]
        return dict(variant)

    def activities(self) -> list[dict[str, Any]]:
        found = self.aas.describe_scaling_activities(ServiceNamespace="sagemaker")
        return list(found["ScalingActivities"])

    def publish(self, value: float) -> None:
        self.cw.put_metric_data(
            Namespace=LOAD["Namespace"],
            MetricData=[{"MetricName": LOAD["MetricName"], "Value": value,
                         "StorageResolution": 1}],
        )  # fmt: skip


def spec(tmp_path: Path) -> Path:
    path = tmp_path / "ep.yaml"
    container = {"hostname": "main", "command": [PYTHON, CONTRACT_SERVER]}
    path.write_text(json.dumps({"name": "ep", "containers": [container]}))  # YAML reads JSON
    return path


@contextlib.contextmanager
def gateway(state: Path, *specs: Path, env: dict[str, str] | None = None) -> Iterator[Gateway]:
    port = free_port()
    args = [PYTHON, "-m", "gateway", "serve", *map(str, specs), "--state-dir", str(state),
            "--port", str(port)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = state.parent / f"gw-{port}.log"
    with running(args, env={**ENV, **(env or {})}, url=url, timeout=90, log=log) as proc:
        yield Gateway(url, state, proc)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with gateway(tmp_path / "state", spec(tmp_path)) as running_gateway:
        yield running_gateway


def until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def feeding(gw: Gateway, value: Callable[[], float]) -> Iterator[None]:
    """Publish ``value()`` to the load metric every 0.2 s while the block runs."""
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            gw.publish(value())
            stop.wait(0.2)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def invoking(gw: Gateway) -> Iterator[list[str]]:
    """Invoke the endpoint in a loop while the block runs; yields the failures seen."""
    failures: list[str] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                gw.runtime.invoke_endpoint(EndpointName="ep", Body=b"1,2", ContentType="text/csv")
            except Exception as exc:  # every failure is what the test counts
                failures.append(repr(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(timeout=30)
