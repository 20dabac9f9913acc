"""The TensorFlow defaults in-process: finding and loading artifacts, TF-Serving I/O."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras
import tensorflow as tf

from containers.errors import (
    BadInput,
    ModelLoadError,
    UnsupportedAccept,
    UnsupportedContentType,
)
from containers.tensorflow import TensorFlowFramework, TFRequest, TFResponse
from containers.tensorflow.model import KerasModel, SavedModel, find_artifact
from tests.containers.conftest import KERAS_NUMPY_COPY

pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings(KERAS_NUMPY_COPY)]

FEATURES = 4


def synthetic(rows: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, FEATURES)).astype(np.float32)


def train_keras(seed: int = 0) -> keras.Model:
    """A tiny classifier fitted for a couple of epochs on synthetic data."""
    keras.utils.set_random_seed(seed)
    x = synthetic(seed=seed)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    model = keras.Sequential(
        [
            keras.Input(shape=(FEATURES,), name="features"),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


def save_savedmodel(model: keras.Model, model_dir: Path, version: int = 1) -> None:
    """TF Serving's layout: ``<model_dir>/<version>/saved_model.pb``."""
    model.export(str(model_dir / str(version)), verbose=False)


def save_keras(model: keras.Model, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(model_dir / "model.keras"))


class TwoHeaded(tf.Module):
    """Two named inputs, two named outputs: exercises named instances and per-instance objects."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int64, name="b"),
        ]
    )
    def serve(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
        total = tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)
        return {"total": total, "scaled": a * 2.0}


def save_two_headed(model_dir: Path) -> None:
    module = TwoHeaded()
    tf.saved_model.save(
        module,
        str(model_dir / "1"),
        signatures={"serving_default": module.serve, "other": module.serve},
    )


def expected(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    return train_keras()


@pytest.fixture(scope="module")
def framework() -> TensorFlowFramework:
    return TensorFlowFramework()


@pytest.fixture(scope="module")
def savedmodel_dir(tmp_path_factory: pytest.TempPathFactory, trained: keras.Model) -> Path:
    model_dir = tmp_path_factory.mktemp("tf-savedmodel")
    save_savedmodel(trained, model_dir)
    return model_dir


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory: pytest.TempPathFactory, trained: keras.Model) -> Path:
    model_dir = tmp_path_factory.mktemp("tf-keras")
    save_keras(trained, model_dir)
    return model_dir


@pytest.fixture(scope="module")
def two_headed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("tf-two-headed")
    save_two_headed(model_dir)
    return model_dir


def test_highest_numeric_version_wins(tmp_path: Path) -> None:
    for version in ("2", "10", "notes"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "11").mkdir()  # no saved_model.pb: not a version
    assert find_artifact(tmp_path) == tmp_path / "10"


def test_artifact_search_order(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"")
    assert find_artifact(tmp_path) == tmp_path / "weights.h5"
    (tmp_path / "other.keras").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="several Keras files"):
        find_artifact(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    assert find_artifact(tmp_path) == tmp_path / "model.keras"
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert find_artifact(tmp_path) == tmp_path


def test_nothing_to_load_says_what_was_expected(
    framework: TensorFlowFramework, tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match=r"SavedModel .* or a Keras file"):
        framework.load(tmp_path)


@pytest.mark.parametrize("layout", ["savedmodel", "keras"])
def test_instances_predict_like_the_model(
    framework: TensorFlowFramework,
    trained: keras.Model,
    savedmodel_dir: Path,
    keras_dir: Path,
    layout: str,
) -> None:
    model = framework.load(savedmodel_dir if layout == "savedmodel" else keras_dir)
    assert isinstance(model, SavedModel if layout == "savedmodel" else KerasModel)
    x = synthetic(3, seed=1)
    request = framework.input_fn(json.dumps({"instances": x.tolist()}).encode(), "application/json")
    body = framework.output_fn(framework.predict(request, model), "application/json")
    predictions = json.loads(body)["predictions"]
    np.testing.assert_allclose(predictions, expected(trained, x), rtol=1e-5, atol=1e-6)


def test_columnar_request_gets_columnar_answer(
    framework: TensorFlowFramework, trained: keras.Model, savedmodel_dir: Path
) -> None:
    x = synthetic(2, seed=2)
    request = framework.input_fn(json.dumps({"inputs": x.tolist()}).encode(), "application/json")
    assert isinstance(request, TFRequest) and request.columnar
    answer = json.loads(
        framework.output_fn(
            framework.predict(request, framework.load(savedmodel_dir)), "application/json"
        )
    )
    np.testing.assert_allclose(answer["outputs"], expected(trained, x), rtol=1e-5, atol=1e-6)


def test_named_inputs_and_outputs(framework: TensorFlowFramework, two_headed_dir: Path) -> None:
    model = framework.load(two_headed_dir)
    body = json.dumps({"instances": [{"a": [1.0, 2.0], "b": 3}, {"a": [0.5, 0.5], "b": 0}]})
    rows = json.loads(
        framework.output_fn(
            framework.predict(framework.input_fn(body.encode(), "application/json"), model),
            "application/json",
        )
    )["predictions"]
    assert [row["total"] for row in rows] == [6.0, 1.0]
    assert rows[1]["scaled"] == [1.0, 1.0]
    other = framework.input_fn(
        b'{"signature_name": "other", "inputs": {"a": [[1, 1]], "b": [1]}}', "application/json"
    )
    outputs = json.loads(framework.output_fn(framework.predict(other, model), "application/json"))[
        "outputs"
    ]
    assert outputs == {"total": [3.0], "scaled": [[2.0, 2.0]]}


def test_graph_errors_say_what_went_wrong(
    framework: TensorFlowFramework, two_headed_dir: Path
) -> None:
    body = b'{"inputs": {"a": [[1, 1], [2, 2]], "b": [1, 2, 3]}}'  # batch sizes 2 and 3
    with pytest.raises(BadInput, match="rejected the input: Incompatible shapes"):
        framework.predict(
            framework.input_fn(body, "application/json"), framework.load(two_headed_dir)
        )


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-npy", "application/jsonlines"])
def test_csv_npy_and_jsonlines_in(
    framework: TensorFlowFramework, trained: keras.Model, savedmodel_dir: Path, content_type: str
) -> None:
    x = synthetic(3, seed=3)
    if content_type == "text/csv":
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()
    elif content_type == "application/jsonlines":
        body = "\n".join(json.dumps(row) for row in x.tolist()).encode()
    else:
        buffer = io.BytesIO()
        np.save(buffer, x, allow_pickle=False)
        body = buffer.getvalue()
    response = framework.predict(
        framework.input_fn(body, content_type), framework.load(savedmodel_dir)
    )
    assert isinstance(response, TFResponse)
    outputs = response.outputs
    array = next(iter(outputs.values())) if isinstance(outputs, dict) else outputs
    np.testing.assert_allclose(array, expected(trained, x), rtol=1e-5, atol=1e-6)


def test_csv_npy_and_jsonlines_out(framework: TensorFlowFramework) -> None:
    outputs = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)
    response = TFResponse({"output_0": outputs})
    csv = framework.output_fn(response, "text/csv").decode()
    np.testing.assert_allclose(np.loadtxt(io.StringIO(csv), delimiter=",", ndmin=2), outputs)
    npy = framework.output_fn(response, "application/x-npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(npy), allow_pickle=False), outputs)
    lines = framework.output_fn(response, "application/jsonlines").decode().splitlines()
    assert [json.loads(line) for line in lines] == outputs.tolist()


def test_plain_arrays_from_user_functions_work(
    framework: TensorFlowFramework, trained: keras.Model, keras_dir: Path
) -> None:
    x = synthetic(2, seed=4)
    outputs = framework.predict(x.astype(np.float64), framework.load(keras_dir))
    np.testing.assert_allclose(outputs, expected(trained, x), rtol=1e-5, atol=1e-6)
    raw = json.loads(framework.output_fn(np.array([1, 2]), "application/json"))
    assert raw == {"predictions": [1, 2]}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"instances": [[1, 2, 3]]}', r"has shape \(1, 3\); the model expects \(None, 4\)"),
        (b'{"signature_name": "nope", "instances": [[1, 2, 3, 4]]}', "no signature 'nope'"),
        (b'{"instances": [{"wrong": [1, 2, 3, 4]}]}', "do not match"),
        (b'{"instances": [["a", "b", "c", "d"]]}', "cannot be read as float32"),
    ],
)
def test_bad_requests_are_bad_input(
    framework: TensorFlowFramework, savedmodel_dir: Path, body: bytes, fragment: str
) -> None:
    model = framework.load(savedmodel_dir)
    with pytest.raises(BadInput, match=fragment):
        framework.predict(framework.input_fn(body, "application/json"), model)


def test_keras_wrong_shape_is_bad_input(framework: TensorFlowFramework, keras_dir: Path) -> None:
    with pytest.raises(BadInput, match=r"has shape \(1, 2\); the model expects \(None, 4\)"):
        framework.predict(
            framework.input_fn(b"[[1, 2]]", "application/json"), framework.load(keras_dir)
        )


def test_unsupported_types_are_refused(framework: TensorFlowFramework) -> None:
    with pytest.raises(UnsupportedContentType, match="text/plain"):
        framework.input_fn(b"x", "text/plain")
    with pytest.raises(UnsupportedAccept, match="image/png"):
        framework.output_fn(TFResponse(np.zeros(1)), "image/png")
    with pytest.raises(UnsupportedAccept, match="2 outputs"):
        framework.output_fn(TFResponse({"a": np.zeros(1), "b": np.zeros(1)}), "text/csv")


def test_unload_drops_the_model(framework: TensorFlowFramework, savedmodel_dir: Path) -> None:
    model = framework.load(savedmodel_dir)
    framework.unload(model)
    with pytest.raises(AttributeError):
        model.predict(np.zeros((1, FEATURES)))


def test_thread_configuration_never_raises(framework: TensorFlowFramework) -> None:
    # The eager context is already running here, so TF refuses; the framework logs and carries on.
    framework.configure_threads(1, 1)
    framework.configure_threads(2, 2)
