"""TANDEM_INTRA_OP_THREADS, and its default, hold in the threads that predict, not only in main.

OpenMP's thread count is per thread: the PyTorch container sets it in each worker thread as it
starts. Without that, the first matrix product in a worker thread starts an OpenMP team of one
thread per core. The user's ``predict_fn`` counts the process's threads around a product.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")

from tests.containers.conftest import TORCHSCRIPT_DEPRECATED, StartContainer, package_model
from tests.containers.test_pytorch_framework import FEATURES, train_regressor
from tests.containers.test_server_pytorch import artifacts

pytestmark = [pytest.mark.pytorch, pytest.mark.filterwarnings(TORCHSCRIPT_DEPRECATED)]

REPORTER = textwrap.dedent(
    '''
    """Reports the predicting thread and its intra-op thread count."""
    import json
    import os
    import threading
    import time

    import torch

    W = torch.randn(256, 256)
    X = torch.randn(32, 256)


    def predict_fn(data, model):
        time.sleep(0.005)  # slower than the inline budget: predictions run in worker threads
        before = len(os.listdir("/proc/self/task"))
        for _ in range(5):
            X @ W
        started = len(os.listdir("/proc/self/task")) - before
        return {"thread": threading.current_thread().name, "started": started}


    def output_fn(prediction, accept):
        return json.dumps(prediction), "application/json"
    '''
)


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2 or not Path("/proc/self/task").is_dir(),
    reason="needs two cores (with one, every default is already 1) and Linux's /proc",
)
@pytest.mark.parametrize(
    "env",
    [{"TANDEM_INTRA_OP_THREADS": "1"}, {}],
    ids=["configured", "default: the CPUs shared out between the predicting threads"],
)
def test_worker_threads_predict_with_the_configured_intra_op_threads(
    tmp_path: Path, start_container: StartContainer, env: dict[str, str]
) -> None:
    built = tmp_path / "model"
    train_regressor(built)
    model_dir = package_model(tmp_path / "packaged", artifacts(built), code=REPORTER)
    server = start_container("pytorch", model_dir, env=env)
    seen = []
    for _ in range(20):
        answer = httpx.post(
            f"{server.url}/invocations",
            content=json.dumps([[0.0] * FEATURES]),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        seen.append(answer.json())
    assert sum(s["started"] for s in seen) == 0, seen  # no OpenMP team: one thread computes
    assert any(s["thread"] != "MainThread" for s in seen), seen  # a worker thread answered
