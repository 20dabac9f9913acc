"""One TensorFlow container holding many models keeps one set of thread pools.

Zendesk hit the kernel's thread limit past 500 TensorFlow models when each model brought ~3x vCPU
threads of its own; here every model shares the process's eager context and its pools.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import psutil
import pytest

pytest.importorskip("tensorflow")

from tests.containers.test_tensorflow_framework import (
    KERAS_NUMPY_COPY,
    save_savedmodel,
    synthetic,
    train_keras,
)
from tests.support import PYTHON, free_port, running

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.slow,
    pytest.mark.filterwarnings(KERAS_NUMPY_COPY),
]

MODELS = 50
#: Threads a process may gain between 1 and ``MODELS`` models (a load pool's worker or two).
SLACK = 6


def load_and_invoke(url: str, name: str, folder: Path) -> None:
    loaded = httpx.post(f"{url}/models", json={"model_name": name, "url": str(folder)}, timeout=60)
    assert loaded.status_code == 200, loaded.text
    body = json.dumps({"instances": synthetic(2, seed=1).tolist()})
    answer = httpx.post(
        f"{url}/models/{name}/invoke",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2


def test_thread_count_stays_flat_with_many_models(tmp_path: Path) -> None:
    source = tmp_path / "source"
    save_savedmodel(train_keras(), source)
    folders = []
    for i in range(MODELS):
        folders.append(tmp_path / f"m{i}")
        shutil.copytree(source, folders[-1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_BASE_DIR": str(tmp_path / "opt-ml"),
        "TANDEM_CONTAINER_HOST": "127.0.0.1",
    }
    args = [PYTHON, "-m", "containers", "serve", "--framework", "tensorflow"]
    with running(args, env=env, url=url, timeout=180, log=tmp_path / "container.log") as proc:
        process = psutil.Process(proc.pid)
        load_and_invoke(url, "m0", folders[0])
        with_one = process.num_threads()
        for i, folder in enumerate(folders[1:], start=1):
            load_and_invoke(url, f"m{i}", folder)
        with_many = process.num_threads()
        listed = httpx.get(f"{url}/models", params={"limit": 1000}).json()["models"]
        assert len(listed) == MODELS
    assert with_many - with_one <= SLACK, (with_one, with_many)
