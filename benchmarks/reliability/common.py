"""What the reliability scripts share: a real ``tandem serve`` of a small endpoint, and results.

Every script starts its own gateway process (``python -m gateway serve``) with a Direct endpoint
named ``rel`` whose containers are the standard-library contract server, or the scikit-learn
container with a tiny model trained on the spot, so that the figures are those of real processes
over real HTTP. Results go to ``benchmarks/reliability/results/<name>.json``; ``report.py`` turns
them into ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from benchmarks.servers import stop
from gateway.ops.loadtest import LoadSpec

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_SERVER = ROOT / "tests" / "gateway" / "contract_server.py"
RESULTS = Path(__file__).resolve().parent / "results"
ENDPOINT = "rel"
FEATURES = 4
#: One JSON row of ``FEATURES`` values: what the load of kill, soak and slow_clients sends.
BODY = b'{"instances": [[0.1, 0.2, 0.3, 0.4]]}'
#: Restarts quick enough to see several within a run; docs/reliability.md lists these settings.
GATEWAY_ENV = {
    "TANDEM_RESTART_BACKOFF": "0.5",
    "TANDEM_RESTART_BACKOFF_MAX": "5",
    "TANDEM_RESTART_RESET_AFTER": "20",
    "TANDEM_HEALTH_INTERVAL": "1",
    "TANDEM_STOP_GRACE": "3",
    "TANDEM_LOG_LEVEL": "warning",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def contract_container(**env: str) -> dict[str, Any]:
    """A container spec running the stdlib contract server (echo by default)."""
    return {"command": [sys.executable, str(CONTRACT_SERVER)], "environment": env}


def sklearn_model(folder: Path, seed: int = 0) -> tuple[Path, Any]:
    """A tiny logistic regression (``FEATURES`` inputs) saved for the sklearn container."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, FEATURES))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    return folder, model


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def describe(self) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/endpoints/{ENDPOINT}", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def restarts(self) -> dict[str, int]:
        return {c["ContainerHostname"]: c["Restarts"] for c in self.describe()["Containers"]}

    def all_healthy(self) -> bool:
        return all(c["State"] == "InService" for c in self.describe()["Containers"])

    def container_pid(self, hostname: str) -> int:
        """The pid of the process that listens on ``hostname``'s port (the container itself)."""
        (url,) = (
            c["Url"] for c in self.describe()["Containers"] if c["ContainerHostname"] == hostname
        )
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                for conn in child.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                        return child.pid
        raise LookupError(f"no process listens on {url}")

    def rss(self) -> int:
        """Resident memory of the gateway process alone (its containers are separate)."""
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def workspace(workdir: Path | None) -> Iterator[Path]:
    """``workdir`` if given (kept afterwards, to read its logs), else a temporary folder."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def gateway(
    containers: Mapping[str, Mapping[str, Any]],
    workdir: Path | None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Iterator[Gateway]:
    """``tandem serve`` of a Direct endpoint with these containers (hostname -> spec fields)."""
    with workspace(workdir) as folder:
        spec = folder / f"{ENDPOINT}.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": ENDPOINT,
                    "execution": "Direct",
                    "containers": [{"hostname": h, **fields} for h, fields in containers.items()],
                }
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = folder / "gateway.log"
        args = [sys.executable, "-m", "gateway", "serve", str(spec), "--port", str(port)]
        args += ["--state-dir", str(folder / "state")]
        full_env = {**os.environ, **GATEWAY_ENV, **(env or {})}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                args, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            served = Gateway(url, proc, log)
            try:
                _wait_ready(served, timeout)
                yield served
            finally:
                stop(proc, timeout=30)


def _wait_ready(served: Gateway, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise RuntimeError(
                f"tandem serve exited with {served.proc.returncode}:\n{served.tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{served.url}/ping", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"tandem serve not ready within {timeout}s:\n{served.tail()}")


def load_spec(
    served: Gateway,
    target: str,
    duration: float,
    *,
    users: int,
    rate: float | None = None,
    timeout: float = 10.0,
) -> LoadSpec:
    """``BODY`` to one container of the endpoint, every user started at once."""
    return LoadSpec(
        url=served.url,
        endpoint=ENDPOINT,
        users=users,
        spawn_rate=0,
        duration=duration,
        body=BODY,
        content_type="application/json",
        target_container=target,
        rate=rate,
        timeout=timeout,
    )


def parser(description: str, duration: float) -> argparse.ArgumentParser:
    """Arguments every script takes: how long, and where the work files go."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=float, default=duration, help="seconds (%(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="state and logs (a temp dir)")
    return parser


def write_result(name: str, result: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def print_result(name: str, result: Mapping[str, Any]) -> None:
    """The headline figures on stdout (the JSON file has them all)."""
    print(f"== {name}: {'PASS' if result.get('passed') else 'FAIL'}")
    for key, value in result.items():
        if not isinstance(value, dict | list):
            print(f"  {key}: {value}")
