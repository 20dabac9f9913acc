"""The PyTorch defaults in-process: load, input_fn, predict, output_fn on a model trained here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from containers.errors import BadInput, ModelLoadError
from containers.pytorch import EXPORTED_FILE, MODEL_FILE, PyTorchFramework
from tests.containers.conftest import TORCHSCRIPT_DEPRECATED

pytestmark = [pytest.mark.pytorch, pytest.mark.filterwarnings(TORCHSCRIPT_DEPRECATED)]

FEATURES = 4


class Regressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(FEATURES, 8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class Embedder(torch.nn.Module):
    """Takes integer token ids: checks that ``.npy`` bodies keep integer dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids).sum(dim=1)


def synthetic(rows: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, FEATURES)).astype(np.float32)


def train_regressor(model_dir: Path, seed: int = 0) -> torch.jit.ScriptModule:
    """Fit a tiny regressor on synthetic data and save it as TorchScript ``model.pt``."""
    torch.manual_seed(seed)
    x = torch.from_numpy(synthetic(seed=seed))
    y = torch.stack([x.sum(dim=1), x[:, 0] - x[:, 1]], dim=1)
    model = Regressor()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(20):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimiser.step()
    scripted = torch.jit.script(model.eval())
    model_dir.mkdir(parents=True, exist_ok=True)
    scripted.save(str(model_dir / MODEL_FILE))
    return scripted


def expected(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def framework() -> PyTorchFramework:
    return PyTorchFramework()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.jit.ScriptModule]:
    model_dir = tmp_path_factory.mktemp("pytorch-model")
    return model_dir, train_regressor(model_dir)


def test_load_gives_an_eval_mode_torchscript_module(
    framework: PyTorchFramework, trained: tuple[Path, torch.nn.Module]
) -> None:
    model = framework.load(trained[0])
    assert isinstance(model, torch.jit.ScriptModule)
    assert not model.training


@pytest.mark.parametrize("content_type", ["application/json", "text/csv", "application/x-npy"])
def test_every_content_type_predicts_like_the_model(
    framework: PyTorchFramework, trained: tuple[Path, torch.nn.Module], content_type: str
) -> None:
    x = synthetic(5, seed=1)
    body = {
        "application/json": json.dumps(x.tolist()).encode(),
        "text/csv": "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode(),
        "application/x-npy": npy(x.astype(np.float64)),
    }[content_type]
    data = framework.input_fn(body, content_type)
    assert data.dtype == torch.float32
    prediction = framework.predict(data, framework.load(trained[0]))
    np.testing.assert_allclose(prediction.numpy(), expected(trained[1], x), rtol=1e-5, atol=1e-6)


def test_text_ints_become_floats_but_npy_ints_stay_ints(framework: PyTorchFramework) -> None:
    assert framework.input_fn(b"[[1, 2]]", "application/json").dtype == torch.float32
    ids = np.array([[1, 2, 3]], dtype=np.int32)
    tensor = framework.input_fn(npy(ids), "application/x-npy")
    assert tensor.dtype == torch.int64
    embedder = Embedder().eval()
    with torch.inference_mode():
        want = embedder(torch.from_numpy(ids.astype(np.int64))).numpy()
    np.testing.assert_allclose(framework.predict(tensor, embedder).numpy(), want)


def test_numpy_from_a_user_input_fn_is_converted(
    framework: PyTorchFramework, trained: tuple[Path, torch.nn.Module]
) -> None:
    x = synthetic(3, seed=2).astype(np.float64)
    prediction = framework.predict(x, trained[1])
    np.testing.assert_allclose(prediction.numpy(), expected(trained[1], x), rtol=1e-5)


@pytest.mark.parametrize("accept", ["application/json", "text/csv", "application/x-npy"])
def test_output_fn_encodes_tensors(framework: PyTorchFramework, accept: str) -> None:
    prediction = torch.tensor([[0.25, -1.5], [3.0, 4.125]])
    body = framework.output_fn(prediction, accept)
    if accept == "application/json":
        decoded = np.asarray(json.loads(body))
    elif accept == "text/csv":
        decoded = np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    else:
        decoded = np.load(io.BytesIO(body), allow_pickle=False)
    np.testing.assert_allclose(decoded, prediction.numpy())


def test_a_torch_export_program_loads_too(framework: PyTorchFramework, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Regressor().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        model, (torch.zeros(2, FEATURES),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, str(tmp_path / EXPORTED_FILE))
    x = synthetic(5, seed=3)
    data = framework.input_fn(npy(x), "application/x-npy")
    loaded = framework.load(tmp_path)
    prediction = framework.predict(data, loaded)
    np.testing.assert_allclose(prediction.numpy(), expected(model, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInput, match=r"shape \(1, 3\)"):
        framework.predict(np.zeros((1, 3)), loaded)


def test_missing_model_file_names_it(framework: PyTorchFramework, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=MODEL_FILE):
        framework.load(tmp_path)


def test_corrupt_model_file_is_a_load_error(framework: PyTorchFramework, tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_bytes(b"not a zip archive")
    with pytest.raises(ModelLoadError, match="TorchScript"):
        framework.load(tmp_path)


def test_wrong_shape_is_bad_input(
    framework: PyTorchFramework, trained: tuple[Path, torch.nn.Module]
) -> None:
    with pytest.raises(BadInput, match=r"shape \(1, 3\): mat1 and mat2 shapes cannot be mult"):
        framework.predict(framework.input_fn(b"[[1, 2, 3]]", "application/json"), trained[1])


@pytest.mark.parametrize("body", [b'[["a", "b"]]', b"[[1, 2], [3]]"])
def test_non_numeric_or_ragged_json_is_bad_input(framework: PyTorchFramework, body: bytes) -> None:
    with pytest.raises(BadInput):
        framework.input_fn(body, "application/json")


def test_thread_configuration_is_idempotent(framework: PyTorchFramework) -> None:
    before = torch.get_num_threads()
    try:
        framework.configure_threads(1, 1)
        framework.configure_threads(1, 2)  # inter-op is fixed after the first call: no error
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
