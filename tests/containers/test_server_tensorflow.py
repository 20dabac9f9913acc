"""The TensorFlow container as a real process over HTTP: SavedModel, Keras file, TF-Serving JSON."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras

from containers import codecs
from tests.containers.conftest import (
    HOOKS_PY,
    KERAS_NUMPY_COPY,
    Send,
    StartContainer,
    assert_ping_answers_while_predicting,
    assert_user_error_is_500,
    package_model,
)
from tests.containers.test_tensorflow_framework import (
    expected,
    save_keras,
    save_savedmodel,
    synthetic,
    train_keras,
)

pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings(KERAS_NUMPY_COPY)]

INFERENCE_PY = textwrap.dedent(
    '''
    """User handler: CSV with a header row in, named probabilities out; predict_fn with hooks."""
    import json

    import numpy as np
    from hooks import hold_or_fail


    def input_fn(body, content_type):
        lines = body.decode().strip().splitlines()[1:]  # skip the header
        return np.array([[float(v) for v in line.split(",")] for line in lines], dtype="float32")


    def predict_fn(data, model, context):
        hold_or_fail(context)
        return model.predict(data)


    def output_fn(prediction, accept):
        return json.dumps({"probabilities": np.asarray(prediction).tolist()}), "application/json"
    '''
)

ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}
TYPES = ["application/json", "text/csv", "application/jsonlines", "application/x-npy"]


def artifacts(source: Path) -> dict[str, bytes]:
    """Every file under ``source`` by its relative path, for ``package_model``."""
    return {
        str(path.relative_to(source)): path.read_bytes()
        for path in sorted(source.rglob("*"))
        if path.is_file()
    }


def invoke(url: str, body: bytes, content_type: str, accept: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    return train_keras()


@pytest.fixture(scope="module")
def url(
    tmp_path_factory: pytest.TempPathFactory, start_container: StartContainer, trained: keras.Model
) -> str:
    """A SavedModel in TF Serving's ``<dir>/1/`` layout, default handlers."""
    root = tmp_path_factory.mktemp("tf-default")
    save_savedmodel(trained, root / "source")
    model_dir = package_model(root / "package", artifacts(root / "source"))
    assert (model_dir / "1" / "saved_model.pb").is_file()
    env = {**ONE_THREAD, "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01"}
    return start_container("tensorflow", model_dir, env=env).url


@pytest.fixture(scope="module")
def keras_url(
    tmp_path_factory: pytest.TempPathFactory, start_container: StartContainer, trained: keras.Model
) -> str:
    """A ``model.keras`` file with a user ``code/inference.py``."""
    root = tmp_path_factory.mktemp("tf-keras")
    save_keras(trained, root / "source")
    model_dir = package_model(
        root / "package",
        artifacts(root / "source"),
        code=INFERENCE_PY,
        extra_code={"hooks.py": HOOKS_PY},
    )
    return start_container("tensorflow", model_dir, env=ONE_THREAD).url


def assert_still_up(url: str, model: keras.Model) -> None:
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    x = synthetic(1, seed=9)
    response = invoke(url, json.dumps({"instances": x.tolist()}).encode(), "application/json")
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    np.testing.assert_allclose(predictions, expected(model, x), rtol=1e-5, atol=1e-6)


def test_instances_answer_predictions(url: str, trained: keras.Model) -> None:
    x = synthetic(3, seed=1)
    response = invoke(url, json.dumps({"instances": x.tolist()}).encode(), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["predictions"]
    np.testing.assert_allclose(body["predictions"], expected(trained, x), rtol=1e-5, atol=1e-6)


def test_inputs_answer_outputs(url: str, trained: keras.Model) -> None:
    x = synthetic(2, seed=2)
    response = invoke(url, json.dumps({"inputs": x.tolist()}).encode(), "application/json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["outputs"]
    np.testing.assert_allclose(body["outputs"], expected(trained, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("content_type", TYPES)
def test_every_content_type_in(url: str, trained: keras.Model, content_type: str) -> None:
    x = synthetic(4, seed=3)
    response = invoke(url, codecs.encode(x, content_type), content_type)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    np.testing.assert_allclose(predictions, expected(trained, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("accept", ["text/csv", "application/jsonlines", "application/x-npy"])
def test_every_accept_out(url: str, trained: keras.Model, accept: str) -> None:
    x = synthetic(3, seed=4)
    response = invoke(
        url, json.dumps({"instances": x.tolist()}).encode(), "application/json", accept
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    np.testing.assert_allclose(
        codecs.decode(response.content, accept), expected(trained, x), rtol=1e-5, atol=1e-6
    )


def test_keras_file_with_user_input_fn_and_output_fn(keras_url: str, trained: keras.Model) -> None:
    x = synthetic(2, seed=5)
    csv = io.StringIO()
    np.savetxt(csv, x, delimiter=",", header="a,b,c,d", comments="", fmt="%.9g")
    response = invoke(keras_url, csv.getvalue().encode(), "text/csv")
    assert response.status_code == 200, response.text
    probabilities = response.json()["probabilities"]
    np.testing.assert_allclose(probabilities, expected(trained, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "fragment"),
    [
        (b'{"instances": [[1, 2,', "application/json", None, 400, "JSON"),
        (b'{"rows": [[1, 2, 3, 4]]}', "application/json", None, 400, "instances"),
        (b'{"instances": [[1, 2, 3]]}', "application/json", None, 400, "expects (None, 4)"),
        (b"[1, 2, 3, 4]\n{oops", "application/jsonlines", None, 400, "line 2"),
        (b'{"instances": [[1, 2, 3, 4]]}', "text/plain", None, 415, "text/plain"),
        (b'{"instances": [[1, 2, 3, 4]]}', "application/json", "image/png", 406, "image/png"),
        (
            b'{"instances": [' + b"[1, 2, 3, 4], " * 1000 + b"[]]}",
            "application/json",
            None,
            413,
            "limit",
        ),
    ],
)
def test_errors_leave_the_server_up(
    url: str,
    trained: keras.Model,
    body: bytes,
    content_type: str,
    accept: str | None,
    status: int,
    fragment: str,
) -> None:
    response = invoke(url, body, content_type, accept)
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]
    assert "Traceback" not in response.text
    assert_still_up(url, trained)


def csv_rows(url: str) -> Send:
    x = synthetic(2, seed=6)
    csv = io.StringIO()
    np.savetxt(csv, x, delimiter=",", header="a,b,c,d", comments="", fmt="%.9g")
    return lambda headers: httpx.post(
        f"{url}/invocations",
        content=csv.getvalue().encode(),
        headers={"Content-Type": "text/csv", **headers},
        timeout=30,
    )


def test_user_exception_is_500_without_trace(keras_url: str) -> None:
    assert_user_error_is_500(keras_url, csv_rows(keras_url))


def test_ping_answers_while_a_prediction_runs(keras_url: str, tmp_path: Path) -> None:
    assert_ping_answers_while_predicting(keras_url, csv_rows(keras_url), tmp_path)
