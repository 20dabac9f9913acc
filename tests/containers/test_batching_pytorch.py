"""Adaptive batching in a real PyTorch container: stacked answers equal single ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from containers import codecs
from tests.containers.conftest import TORCHSCRIPT_DEPRECATED, StartContainer, package_model
from tests.containers.test_batching import GATE_PY, same_answers
from tests.containers.test_pytorch_framework import synthetic, train_regressor

pytestmark = [pytest.mark.pytorch, pytest.mark.filterwarnings(TORCHSCRIPT_DEPRECATED)]

TORCH_CODE = """
import torch
from gate import gate


class Gated:
    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        gate()
        return self.model(x)


def model_fn(model_dir):
    return Gated(torch.jit.load(f"{model_dir}/model.pt", map_location="cpu").eval())
"""


def as_array(body: bytes, accept: str) -> np.ndarray:
    if accept == codecs.NPY:
        return np.load(io.BytesIO(body), allow_pickle=False)
    return np.asarray(codecs.decode(body, accept), dtype=np.float64)


def close(together: bytes, alone: bytes, accept: str) -> None:
    """Float32 kernels may round a stacked call differently in the last bits (relative to the
    row's largest output, so a value near zero needs an absolute bound too)."""
    np.testing.assert_allclose(
        as_array(together, accept), as_array(alone, accept), rtol=1e-5, atol=1e-6
    )


def test_concurrent_rows_answer_as_single_calls(
    start_container: StartContainer, tmp_path: Path
) -> None:
    built = tmp_path / "built"
    train_regressor(built)
    model_dir = package_model(
        tmp_path / "pkg",
        {"model.pt": (built / "model.pt").read_bytes()},
        code=TORCH_CODE,
        extra_code={"gate.py": GATE_PY},
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        "TANDEM_MAX_BATCH_SIZE": "32",
        "BATCH_GATE": str(gate),
        "TANDEM_INTRA_OP_THREADS": "1",
        "TANDEM_INTER_OP_THREADS": "1",
    }
    url = start_container("pytorch", model_dir, env=env).url
    same_answers(url, gate, synthetic(32, seed=2), check=close)
