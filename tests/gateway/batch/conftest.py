"""Real servers for batch runs: one ``tandem serve`` with toy endpoints, and a local S3 server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gateway.harness import CONTRACT_SERVER
from tests.support import PYTHON, free_port, running, wait_for_ping

EXEC_PARAMS = {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2}


def toy(hostname: str | None = None, **env: Any) -> dict[str, Any]:
    """A container running the contract server's ``sum`` model, configured by ``CONTRACT_*``."""
    environment = {"CONTRACT_MODE": "sum", **env}
    container: dict[str, Any] = {"command": [PYTHON, CONTRACT_SERVER], "environment": environment}
    if hostname:
        container["hostname"] = hostname
    return container


#: The endpoints every test can use, by name.
ENDPOINTS: dict[str, dict[str, Any]] = {
    "toy": {"containers": [toy(CONTRACT_EXEC_PARAMS=json.dumps(EXEC_PARAMS))]},
    "toy-direct": {
        "execution": "Direct",
        "containers": [toy("a"), toy("b", CONTRACT_SCALE=10)],
    },
    "toy-slow": {"containers": [toy(CONTRACT_SLEEP=0.15)]},
    "toy-flaky": {"containers": [toy(CONTRACT_FAIL_FIRST=2)]},
}


def write_spec(folder: Path, name: str, fields: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **fields}))
    return path


@pytest.fixture(scope="session")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real gateway (``python -m gateway serve``) serving the toy endpoints."""
    folder = tmp_path_factory.mktemp("gateway")
    specs = [str(write_spec(folder, name, fields)) for name, fields in ENDPOINTS.items()]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", *specs, "--port", str(port)]
    args += ["--state-dir", str(folder / "state")]
    with running(args, url=url, log=folder / "gateway.log", timeout=60):
        yield url


@pytest.fixture(scope="session")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-protocol server (moto's) on a free port."""
    server = shutil.which("moto_server", path=str(Path(PYTHON).parent))
    if server is None:
        pytest.skip("moto[server] is not installed")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with running([server, "-H", "127.0.0.1", "-p", str(port)], log=log) as proc:
        wait_for_ping(url, path="/moto-api/", proc=proc, timeout=60)
        yield url
