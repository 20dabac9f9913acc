"""A real ``tandem serve`` with asynchronous endpoints, driven by boto3's ``invoke_endpoint_async``.

The endpoints run the standard-library contract server (``tests/gateway/contract_server.py``);
answers go to folders under the test's own folder or to the moto S3 server. The gateway is a
real process, so a test can SIGKILL it and start it again on the same state folder.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml
from botocore.config import Config

from gateway.state import FILENAME
from tests.gateway.harness import CONTRACT_SERVER
from tests.gateway.s3server import CREDENTIALS
from tests.support import PYTHON, free_port, running, wait_until

CONFIG = Config(retries={"max_attempts": 0}, read_timeout=60, connect_timeout=5)
#: Without boto3's own checks, to send what only a raw client would.
RAW = Config(
    retries={"max_attempts": 0}, read_timeout=60, connect_timeout=5, parameter_validation=False
)
KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


def toy(**env: Any) -> dict[str, Any]:
    """A contract-server container (``CONTRACT_MODE`` etc. configure it; echo by default)."""
    return {
        "command": [PYTHON, CONTRACT_SERVER],
        "environment": {k: str(v) for k, v in env.items()},
    }


def spec(name: str, output: str, *, failure: str | None = None, **fields: Any) -> dict[str, Any]:
    """An endpoint spec with an ``async_inference`` block (``fields`` add to it / override)."""
    config: dict[str, Any] = {"output_path": output}
    if failure is not None:
        config["failure_path"] = failure
    config.update(fields.pop("async_fields", {}))
    return {"name": name, "containers": [toy()], "async_inference": config, **fields}


@dataclass
class Gateway:
    url: str
    state: Path
    proc: Any
    runtime: Any
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    raw: Any = None

    def invoke(self, endpoint: str, location: str, **extra: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.runtime.invoke_endpoint_async(
            EndpointName=endpoint, InputLocation=location, **extra
        )
        return answer

    def rows(self) -> list[tuple[Any, ...]]:
        """(seq, inference_id, status, attempts) of every queued request, read on the side."""
        conn = sqlite3.connect(self.state / FILENAME)
        try:
            return list(
                conn.execute(
                    "SELECT seq, inference_id, status, attempts FROM async_invocations ORDER BY seq"
                )
            )
        finally:
            conn.close()

    def settled(self, *ids: str, timeout: float = 60.0) -> list[tuple[Any, ...]]:
        """The rows of ``ids`` (every row if none) once all are finished.

        A worker writes the request's object first and marks its row after, so a test that has
        just seen the object polls for the row.
        """

        def done() -> list[tuple[Any, ...]] | None:
            rows = [r for r in self.rows() if not ids or r[1] in ids]
            if len(rows) < len(ids) or not rows:
                return None
            return rows if all(r[2] in ("Completed", "Failed") for r in rows) else None

        return wait_until(done, timeout=timeout, what=f"the requests {ids or 'all'} to finish")

    def metrics(self) -> dict[str, float]:
        """The asynchronous gauges of ``/metrics``, by their full sample name."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        out = {}
        for line in text.splitlines():
            if line.startswith("tandem_approximate_"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def kill(self) -> None:
        """SIGKILL the gateway and its containers, as a crash of the machine's process would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def write_specs(folder: Path, specs: list[dict[str, Any]]) -> list[str]:
    paths = []
    for endpoint in specs:
        path = folder / f"{endpoint['name']}.yaml"
        path.write_text(yaml.safe_dump(endpoint))
        paths.append(str(path))
    return paths


@contextmanager
def gateway(
    folder: Path,
    specs: list[dict[str, Any]],
    *,
    s3: str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_name: str = "gateway.log",
) -> Iterator[Gateway]:
    """``tandem serve`` of ``specs`` on ``folder / "state"``; inputs may come from ``folder``."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {"TANDEM_MODEL_ROOTS": f"{folder},s3://", **CREDENTIALS, **(env or {})}
    if s3 is not None:
        full_env["AWS_ENDPOINT_URL"] = s3
    paths = write_specs(folder, specs)
    state = folder / "state"
    args = [PYTHON, "-m", "gateway", "serve", *paths, "--state-dir", str(state)]
    args += ["--port", str(port)]
    log = folder / log_name
    with ExitStack() as stack:
        proc = stack.enter_context(running(args, url=url, log=log, env=full_env, timeout=90))
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, config=CONFIG, **KEYS)
        raw = boto3.client("sagemaker-runtime", endpoint_url=url, config=RAW, **KEYS)
        yield Gateway(url, state, proc, runtime, log, full_env, raw)


def files(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden partial ones included), relative, sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def wait_for_file(path: Path, timeout: float = 60.0) -> bytes:
    return wait_until(
        lambda: path.read_bytes() if path.is_file() else None,
        timeout=timeout,
        what=f"{path} to appear",
    )
