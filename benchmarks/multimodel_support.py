"""The parts of ``benchmarks/multimodel.py`` around the measurements: a folder store of tree
models, a ``tandem serve`` of it, and the cheapest client to time calls and read metrics with."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.gateway import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 20
ROW = (",".join("0.5" for _ in range(FEATURES)) + "\n").encode()


def tree_archive(megabytes: float, seed: int) -> bytes:
    """A fully grown decision tree of about ``megabytes`` MB: its memory is its nodes, and one
    prediction is a walk down the tree, so the figures are the platform's, not the model's."""
    import joblib
    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    rows = max(int(megabytes * 2**20 / 144), 4)  # ~2 nodes per row, ~72 bytes per node
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    model = DecisionTreeRegressor(max_features=1, random_state=seed).fit(x, rng.normal(size=rows))
    data = io.BytesIO()
    joblib.dump(model, data)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data.getvalue())
        tar.addfile(info, io.BytesIO(data.getvalue()))
    return out.getvalue()


def build_store(root: Path, count: int, megabytes: float, prefix: str) -> list[str]:
    """``count`` distinct files (one archive copied; every load allocates its own memory)."""
    archive = tree_archive(megabytes, seed=len(prefix))
    root.mkdir(parents=True, exist_ok=True)
    targets = [f"{prefix}-{i:04d}.tar.gz" for i in range(count)]
    for target in targets:
        (root / target).write_bytes(archive)
    return targets


def spec(folder: Path, name: str, containers: dict[str, dict[str, Any]]) -> Path:
    import yaml

    body = {
        "name": name,
        "execution": "Direct",
        "containers": [{"hostname": h, **c} for h, c in containers.items()],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def multi(store: Path, **extra: Any) -> dict[str, Any]:
    one = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}
    return {
        "framework": "sklearn",
        "mode": "MultiModel",
        "model_data": str(store),
        "environment": one,
        **extra,
    }


@contextmanager
def gateway(
    folder: Path, spec_path: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``tandem serve`` of ``spec_path``, ``env`` (``TANDEM_*`` settings) on top of ours.

    Its state folder (the disk cache: a stream unpacks over a gigabyte of models) goes when it
    stops: left, the kernel writes it back to disk during the next run, which then pays for it.
    """
    port = free_port()
    state = folder / f"state-{spec_path.stem}"
    log = open(folder / f"{spec_path.stem}.log", "wb")  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        str(spec_path),
        "--state-dir",
        str(state),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/ping", proc, timeout=180)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        shutil.rmtree(state, ignore_errors=True)


class Client:
    """One keep-alive connection: the cheapest client, so the figures are the server's."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def post(self, path: str, headers: dict[str, str]) -> tuple[int, float]:
        started = time.perf_counter()
        self.conn.request("POST", path, body=ROW, headers={"Content-Type": "text/csv", **headers})
        answer = self.conn.getresponse()
        answer.read()
        return answer.status, (time.perf_counter() - started) * 1000

    def get_json(self, path: str) -> Any:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())


def invoke(client: Client, endpoint: str, container: str, target: str) -> tuple[int, float]:
    headers = {
        "X-Amzn-SageMaker-Target-Container-Hostname": container,
        "X-Amzn-SageMaker-Target-Model": target,
    }
    return client.post(f"/endpoints/{endpoint}/invocations", headers)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):7.2f} ms  p90 {pct(values, 90):7.2f} ms  "
        f"p99 {pct(values, 99):7.2f} ms  (n={len(values)})"
    )


def metric(client: Client, name: str, **labels: str) -> float:
    client.conn.request("GET", "/metrics")
    text = client.conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stage_totals(client: Client, container: str, stage: str) -> tuple[float, float]:
    name = f"tandem_model_{stage}_seconds"
    return (
        metric(client, f"{name}_sum", container=container),
        metric(client, f"{name}_count", container=container),
    )
