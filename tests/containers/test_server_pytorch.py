"""The PyTorch container as a real process over HTTP, model packaged the SageMaker way."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from containers import codecs
from tests.containers.conftest import (
    HOOKS_PY,
    TORCHSCRIPT_DEPRECATED,
    Send,
    StartContainer,
    assert_ping_answers_while_predicting,
    assert_user_error_is_500,
    package_model,
)
from tests.containers.test_pytorch_framework import expected, synthetic, train_regressor

pytestmark = [pytest.mark.pytorch, pytest.mark.filterwarnings(TORCHSCRIPT_DEPRECATED)]

ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}

INFERENCE_PY = textwrap.dedent(
    '''
    """User handler: named JSON rows in, a labelled JSON object out; predict_fn has test hooks."""
    import json

    import torch
    from hooks import hold_or_fail


    def input_fn(body, content_type):
        if content_type != "application/json":
            raise ValueError(f"only JSON please, not {content_type}")
        return torch.tensor(json.loads(body)["rows"], dtype=torch.float32)


    def predict_fn(data, model, context):
        hold_or_fail(context)
        with torch.inference_mode():
            return model(data)


    def output_fn(prediction, accept):
        return json.dumps({"scores": prediction.tolist()}), "application/vnd.scores+json"
    '''
)


def artifacts(source: Path) -> dict[str, bytes]:
    """Every file under ``source`` by its relative path, for ``package_model``."""
    return {
        str(path.relative_to(source)): path.read_bytes()
        for path in sorted(source.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.jit.ScriptModule]:
    built = tmp_path_factory.mktemp("pt-build") / "model"
    return built, train_regressor(built)


@pytest.fixture(scope="module")
def url(
    tmp_path_factory: pytest.TempPathFactory,
    start_container: StartContainer,
    scripted: tuple[Path, torch.nn.Module],
) -> str:
    model_dir = package_model(tmp_path_factory.mktemp("pt-default"), artifacts(scripted[0]))
    env = {**ONE_THREAD, "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01"}
    return start_container("pytorch", model_dir, env=env).url


@pytest.fixture(scope="module")
def custom_url(
    tmp_path_factory: pytest.TempPathFactory,
    start_container: StartContainer,
    scripted: tuple[Path, torch.nn.Module],
) -> str:
    root = tmp_path_factory.mktemp("pt-custom")
    model_dir = package_model(
        root, artifacts(scripted[0]), code=INFERENCE_PY, extra_code={"hooks.py": HOOKS_PY}
    )
    return start_container("pytorch", model_dir, env=ONE_THREAD).url


def invoke(url: str, body: bytes, content_type: str, accept: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=30)


def assert_still_up(url: str, model: torch.nn.Module) -> None:
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    x = synthetic(1, seed=9)
    response = invoke(url, codecs.encode(x, "application/json"), "application/json")
    assert response.status_code == 200
    np.testing.assert_allclose(
        codecs.decode(response.content, "application/json"), expected(model, x), rtol=1e-5
    )


TYPES = ["application/json", "text/csv", "application/jsonlines", "application/x-npy"]


@pytest.mark.parametrize("content_type", TYPES)
def test_every_content_type_in(
    url: str, scripted: tuple[Path, torch.nn.Module], content_type: str
) -> None:
    x = synthetic(4, seed=1)
    response = invoke(url, codecs.encode(x, content_type), content_type)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    np.testing.assert_allclose(
        codecs.decode(response.content, "application/json"),
        expected(scripted[1], x),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("accept", TYPES)
def test_every_accept_out(url: str, scripted: tuple[Path, torch.nn.Module], accept: str) -> None:
    x = synthetic(3, seed=2)
    response = invoke(url, codecs.encode(x, "application/json"), "application/json", accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    np.testing.assert_allclose(
        codecs.decode(response.content, accept), expected(scripted[1], x), rtol=1e-5, atol=1e-6
    )


def test_user_input_fn_and_output_fn(
    custom_url: str, scripted: tuple[Path, torch.nn.Module]
) -> None:
    x = synthetic(2, seed=3)
    response = invoke(custom_url, json.dumps({"rows": x.tolist()}).encode(), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.scores+json")
    scores = np.asarray(response.json()["scores"])
    np.testing.assert_allclose(scores, expected(scripted[1], x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        (b"[[1, 2,", "application/json", None, 400),
        (b"[[1, 2, 3]]", "application/json", None, 400),  # the model takes 4 features
        (b'[["a", "b", "c", "d"]]', "application/json", None, 400),
        (b"not an npy file", "application/x-npy", None, 400),
        (b"[[1, 2, 3, 4]]", "text/plain", None, 415),
        (b"[[1, 2, 3, 4]]", "application/json", "image/png", 406),
        (b"[" + b"[1, 2, 3, 4], " * 1000 + b"[1, 2, 3, 4]]", "application/json", None, 413),
    ],
)
def test_errors_leave_the_server_up(
    url: str,
    scripted: tuple[Path, torch.nn.Module],
    body: bytes,
    content_type: str,
    accept: str | None,
    status: int,
) -> None:
    response = invoke(url, body, content_type, accept)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["message"]
    assert "Traceback" not in response.text
    assert_still_up(url, scripted[1])


def send_rows(url: str) -> Send:
    body = json.dumps({"rows": synthetic(2, seed=4).tolist()}).encode()
    return lambda headers: httpx.post(
        f"{url}/invocations",
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def test_user_exception_is_500_without_trace(custom_url: str) -> None:
    assert_user_error_is_500(custom_url, send_rows(custom_url))


def test_ping_answers_while_a_prediction_runs(custom_url: str, tmp_path: Path) -> None:
    assert_ping_answers_while_predicting(custom_url, send_rows(custom_url), tmp_path)
