"""What the lifecycle tests share: a real ``tandem serve`` on a state folder, boto3 clients for it,
and contract-server models to deploy (``CONTRACT_MARKER`` tells which config answered)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from botocore.config import Config

from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON, free_port, running, wait_until


def serve_args(state: Path) -> tuple[list[str], str]:
    """``tandem serve`` on ``state`` and a free port: its command line and its URL."""
    port = free_port()
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(state), "--port", str(port)]
    return args, f"http://127.0.0.1:{port}"


CONFIG = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}


def clients(url: str) -> tuple[Any, Any]:
    control = boto3.client("sagemaker", endpoint_url=url, config=CONFIG, **KEYS)
    runtime = boto3.client("sagemaker-runtime", endpoint_url=url, config=CONFIG, **KEYS)
    return control, runtime


def container(marker: str, **env: str) -> dict[str, Any]:
    command = f"{PYTHON} {CONTRACT_SERVER}"
    return {"Environment": {"TANDEM_COMMAND": command, "CONTRACT_MARKER": marker, **env}}


def deploy(control: Any, name: str, marker: str, **env: str) -> str:
    """A model and a config called ``name``, answering with ``marker``; returns the config."""
    control.create_model(ModelName=name, PrimaryContainer=container(marker, **env))
    control.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name}],
    )
    return name


def wait_status(control: Any, name: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        described: dict[str, Any] = control.describe_endpoint(EndpointName=name)
        return described if described["EndpointStatus"] == wanted else None

    return wait_until(check, timeout=timeout, what=f"{name} {wanted}")


def invoke(runtime: Any, name: str) -> bytes:
    answer = runtime.invoke_endpoint(EndpointName=name, Body=b"ping", ContentType="text/plain")
    body: bytes = answer["Body"].read()
    return body


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A gateway on a fresh state folder: its URL and the folder."""
    state = tmp_path / "state"
    args, url = serve_args(state)
    with running(args, url=url, log=tmp_path / "gateway.log", timeout=60):
        yield url, state


def processes_of(state: Path) -> list[psutil.Process]:
    """The processes a gateway on ``state`` started (they carry it in their environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TANDEM_STATE") == str(state.resolve()):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found
