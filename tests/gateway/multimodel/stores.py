"""Model stores for the serving tests: scikit-learn models trained now, packed like SageMaker's."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import yaml
from sklearn.neighbors import KNeighborsClassifier

from tests.containers.sklearn_models import FEATURES, csv_body, synthetic, train_classifier
from tests.gateway.multimodel.archives import write_tar
from tests.support import PYTHON, free_port, running

__all__ = ["csv_body", "synthetic", "train_classifier"]

SLOW_MODEL_FN = """
import time, joblib
def model_fn(model_dir):
    time.sleep({seconds})
    return joblib.load(f"{{model_dir}}/model.joblib")
"""


def model_bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def pack(path: Path, model: Any, *, code: str | None = None, mode: str = "w:gz") -> Path:
    files = {"model.joblib": model_bytes(model)}
    if code is not None:
        files["code/inference.py"] = code.encode()
    return write_tar(path, files, mode=mode)


def big_model(megabytes: int, seed: int = 0) -> KNeighborsClassifier:
    """A real model whose memory is its training data: ``megabytes`` MB of float64."""
    rows = megabytes * 2**20 // (8 * FEATURES)
    x = np.random.default_rng(seed).normal(size=(rows, FEATURES))
    return KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(x, x[:, 0] > 0)


def write_spec(folder: Path, name: str, execution: str, containers: dict[str, Any]) -> Path:
    spec = {
        "name": name,
        "execution": execution,
        "containers": [{"hostname": h, **fields} for h, fields in containers.items()],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@contextmanager
def gateway(
    folder: Path, *specs: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """``tandem serve`` as a real process; yields its URL and its log file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "gateway.log"
    args = [PYTHON, "-m", "gateway", "serve", *map(str, specs)]
    args += ["--state-dir", str(folder / "state"), "--port", str(port)]
    with running(args, env=env, url=url, timeout=120, log=log):
        yield url, log


def models_of(url: str, endpoint: str, container: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/endpoints/{endpoint}/models", params={"container": container})
    assert answer.status_code == 200, answer.text
    (described,) = answer.json()["Containers"]
    return dict(described)


def loaded(url: str, endpoint: str, container: str) -> dict[str, dict[str, Any]]:
    models = models_of(url, endpoint, container)["Models"]
    return {m["TargetModel"]: m for m in models if m["Loaded"]}


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the gateway's Prometheus text, 0 when absent."""
    text = httpx.get(f"{url}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


def predictions(body: bytes) -> list[Any]:
    return list(json.loads(body))
