"""Adaptive batching in a real TensorFlow container: stacked answers equal single ones."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from containers import codecs
from tests.containers.conftest import KERAS_NUMPY_COPY, StartContainer, package_model
from tests.containers.test_batching import GATE_PY, same_answers
from tests.containers.test_tensorflow_framework import save_savedmodel, synthetic, train_keras

pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings(KERAS_NUMPY_COPY)]

TF_CODE = """
from pathlib import Path

from containers.tensorflow import model as tf_model
from gate import gate


class Gated:
    def __init__(self, model):
        self.model = model

    def predict(self, inputs, signature_name=None):
        gate()
        return self.model.predict(inputs, signature_name)


def model_fn(model_dir):
    return Gated(tf_model.load(Path(model_dir)))
"""


def as_array(body: bytes, accept: str) -> np.ndarray:
    if accept == codecs.NPY:
        return np.load(io.BytesIO(body), allow_pickle=False)
    if accept == codecs.JSON:
        return np.asarray(json.loads(body)["predictions"], dtype=np.float64)
    return np.asarray(codecs.decode(body, accept), dtype=np.float64)


def close(together: bytes, alone: bytes, accept: str) -> None:
    """Float32 kernels may round a stacked call differently in the last bits."""
    np.testing.assert_allclose(as_array(together, accept), as_array(alone, accept), rtol=1e-5)


def test_concurrent_rows_answer_as_single_calls(
    start_container: StartContainer, tmp_path: Path
) -> None:
    built = tmp_path / "built"
    save_savedmodel(train_keras(), built)
    files = {
        str(p.relative_to(built)): p.read_bytes() for p in sorted(built.rglob("*")) if p.is_file()
    }
    model_dir = package_model(
        tmp_path / "pkg", files, code=TF_CODE, extra_code={"gate.py": GATE_PY}
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {"TANDEM_MAX_BATCH_SIZE": "32", "BATCH_GATE": str(gate)}
    url = start_container("tensorflow", model_dir, env=env, timeout=240).url
    same_answers(url, gate, synthetic(32, seed=2), check=close)
