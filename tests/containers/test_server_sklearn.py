"""The scikit-learn container as a real process over real HTTP, packaged the SageMaker way."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("sklearn")

from containers import codecs
from tests.containers.conftest import Container, StartContainer
from tests.containers.sklearn_models import (
    csv_body,
    npy_body,
    package,
    raw_rows,
    synthetic,
    train_classifier,
    train_preprocessor,
)
from tests.support import PYTHON, ROOT, free_port, wait_until

pytestmark = pytest.mark.sklearn
ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}


def body_for(x: np.ndarray, media: str) -> bytes:
    return {
        codecs.JSON: json.dumps(x.tolist()).encode(),
        codecs.CSV: csv_body(x),
        codecs.JSONLINES: "".join(json.dumps(row) + "\n" for row in x.tolist()).encode(),
        codecs.NPY: npy_body(x),
    }[media]


def read(body: bytes, media: str) -> np.ndarray:
    if media == codecs.NPY:
        return np.load(io.BytesIO(body), allow_pickle=False)
    return np.asarray(codecs.decode(body, media), dtype=np.float64).reshape(-1)


@pytest.fixture(scope="module")
def classifier() -> Any:
    return train_classifier()


@pytest.fixture(scope="module")
def plain(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory, classifier: Any
) -> Container:
    """Defaults only: no code/inference.py."""
    model_dir = package(tmp_path_factory.mktemp("plain"), classifier)
    return start_container(
        "sklearn", model_dir, env={**ONE_THREAD, "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01"}
    )


@pytest.fixture
def client(plain: Container) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain.url, timeout=30) as http:
        yield http
    # Every test on the plain server leaves it up and answering.
    assert plain.alive()
    assert httpx.get(plain.url + "/ping", timeout=5).status_code == 200


@pytest.mark.parametrize("accept", codecs.ARRAY_TYPES)
@pytest.mark.parametrize("content_type", codecs.ARRAY_TYPES)
def test_every_content_type_in_and_out(
    client: httpx.Client, classifier: Any, content_type: str, accept: str
) -> None:
    x = synthetic(6, seed=1)
    response = client.post(
        "/invocations",
        content=body_for(x, content_type),
        headers={"Content-Type": content_type, "Accept": accept},
    )
    assert response.status_code == 200, response.text
    assert codecs.media_type(response.headers["content-type"]) == accept
    np.testing.assert_array_equal(read(response.content, accept), classifier.predict(x))


def test_charset_parameters_and_default_accept(client: httpx.Client, classifier: Any) -> None:
    x = synthetic(2, seed=2)
    response = client.post(
        "/invocations", content=csv_body(x), headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    assert codecs.media_type(response.headers["content-type"]) == codecs.JSON
    assert response.json() == classifier.predict(x).tolist()


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("text/csv;q=0.5, application/x-npy;q=0.9", codecs.NPY),
        ("image/png, text/csv;q=0.2", codecs.CSV),
        ("*/*", codecs.JSON),
        ("application/x-npy;q=0, */*;q=0.1", codecs.JSON),
    ],
)
def test_accept_lists_with_q_values(client: httpx.Client, accept: str, chosen: str) -> None:
    response = client.post(
        "/invocations",
        content=csv_body(synthetic(1)),
        headers={"Content-Type": "text/csv", "Accept": accept},
    )
    assert response.status_code == 200, response.text
    assert codecs.media_type(response.headers["content-type"]) == chosen


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "fragment"),
    [
        (b"1,2\n3\n", {"Content-Type": "text/csv"}, 400, "undecodable_body", "row 2"),
        (b"[1, 2", {"Content-Type": "application/json"}, 400, "undecodable_body", "JSON"),
        (b"1,2,3", {"Content-Type": "text/csv"}, 400, "bad_input", "20 features"),
        (b"1", {"Content-Type": "text/plain"}, 415, "unsupported_content_type", "text/plain"),
        (
            b"1",
            {"Content-Type": "text/csv", "Accept": "image/png"},
            406,
            "unsupported_accept",
            "png",
        ),
        (b"0," * 6000, {"Content-Type": "text/csv"}, 413, "payload_too_large", "limit"),
    ],
)
def test_bad_requests_get_json_errors(
    client: httpx.Client,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    fragment: str,
) -> None:
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert fragment in response.json()["message"]


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"0," * 500

    response = client.post("/invocations", content=chunks(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_execution_parameters_and_unknown_routes(client: httpx.Client) -> None:
    params = client.get("/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD" and params["MaxPayloadInMB"] >= 1
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get("/models").status_code == 404  # not a multi-model container


# --- a container with code/inference.py ---------------------------------------------------------

USER_CODE = """
import json
import os
import time
from pathlib import Path

import numpy as np


def input_fn(body, content_type, context):
    request = json.loads(body)
    if request.get("fail"):
        raise ValueError("boom: the user's input_fn refused this")
    if "wait_for" in request:  # block until the test creates a file, to hold a prediction open
        Path(request["started"]).touch()
        deadline = time.monotonic() + request.get("max_wait", 30)
        while not Path(request["wait_for"]).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return np.asarray(request["rows"], dtype=np.float64)


def output_fn(prediction, accept, context):
    attributes = context.custom_attributes or ""
    context.response_headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes.upper()
    return json.dumps({"labels": prediction.tolist(), "model": context.model_name}), accept
"""


@pytest.fixture(scope="module")
def custom(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory, classifier: Any
) -> Container:
    model_dir = package(tmp_path_factory.mktemp("custom"), classifier, USER_CODE)
    return start_container(
        "sklearn", model_dir, env={**ONE_THREAD, "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3"}
    )


def test_user_code_and_context(custom: Container, classifier: Any) -> None:
    x = synthetic(3, seed=5)
    response = httpx.post(
        custom.url + "/invocations",
        json={"rows": x.tolist()},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc", "Accept": "application/x-mine"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-mine"
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == "TRACE=ABC"
    assert response.json() == {"labels": classifier.predict(x).tolist(), "model": "model"}


def test_user_exception_is_500_without_trace(custom: Container) -> None:
    response = httpx.post(custom.url + "/invocations", json={"fail": True, "rows": []})
    assert response.status_code == 500
    assert response.json() == {
        "error": "model_error",
        "message": "input_fn raised ValueError: boom: the user's input_fn refused this",
    }
    # The trace is in the container's log, not in the response.
    wait_until(lambda: "Traceback" in custom.log_text(), timeout=10, what="trace logged")
    assert httpx.get(custom.url + "/ping").status_code == 200


def test_ping_answers_while_a_prediction_runs(custom: Container, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    request = {"rows": synthetic(1).tolist(), "started": str(started), "wait_for": str(release)}
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            httpx.post(custom.url + "/invocations", json=request, timeout=30)
        )
    )
    slow.start()
    try:
        wait_until(started.exists, timeout=20, what="prediction started")
        assert httpx.get(custom.url + "/ping", timeout=2).status_code == 200
        assert not results, "the prediction finished before it was released"
    finally:
        release.touch()
        slow.join(timeout=30)
    assert results and results[0].status_code == 200, results


def test_a_prediction_past_the_timeout_is_504(custom: Container, tmp_path: Path) -> None:
    request = {
        "rows": synthetic(1).tolist(),
        "started": str(tmp_path / "started"),
        "wait_for": str(tmp_path / "never"),
        "max_wait": 6,
    }
    response = httpx.post(custom.url + "/invocations", json=request, timeout=30)
    assert response.status_code == 504
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT=3s" in response.json()["message"]
    assert httpx.get(custom.url + "/ping").status_code == 200


# --- SAGEMAKER_MODEL_SERVER_WORKERS > 1: uvicorn worker processes ------------------------------

#: The only way a test sees which worker process answered: user code says so in a header.
PID_CODE = """
import json
import os


def output_fn(prediction, accept, context):
    context.response_headers["X-Worker-Pid"] = str(os.getpid())
    return json.dumps(prediction.tolist()), "application/json"
"""


def test_several_worker_processes_answer(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory, classifier: Any
) -> None:
    model_dir = package(tmp_path_factory.mktemp("workers"), classifier, PID_CODE)
    server = start_container(
        "sklearn", model_dir, env={**ONE_THREAD, "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    )
    x = synthetic(4, seed=7)
    want = classifier.predict(x).tolist()

    def ask(_: int) -> str:
        # A new connection each time: the workers share the listening socket, not connections.
        response = httpx.post(
            server.url + "/invocations", content=csv_body(x), headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == want
        return response.headers["x-worker-pid"]

    pids: set[str] = set()
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(4) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.update(pool.map(ask, range(8)))
    assert len(pids) == 2, f"only worker {pids} answered"
    assert str(server.proc.pid) not in pids  # the parent only supervises


# --- a preprocessing step feeding a classifier, as in a Serial pipeline ---------------------------


def test_preprocessor_csv_feeds_the_next_container(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pre = train_preprocessor()
    rows = raw_rows(40, seed=0)
    features = pre.transform(rows)
    labels = (features[:, 0] + features[:, -1] > 0).astype(int)
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression().fit(features, labels)
    step1 = start_container(
        "sklearn",
        package(tmp_path_factory.mktemp("pre"), pre),
        env={
            **ONE_THREAD,
            "TANDEM_SKLEARN_METHOD": "transform",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
        },
    )
    step2 = start_container(
        "sklearn", package(tmp_path_factory.mktemp("head"), head), env=ONE_THREAD
    )
    new_rows = raw_rows(7, seed=9)
    first = httpx.post(
        step1.url + "/invocations",
        content=csv_body(new_rows),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert first.status_code == 200, first.text
    np.testing.assert_allclose(
        codecs.decode(first.content, first.headers["content-type"]), pre.transform(new_rows)
    )
    second = httpx.post(
        step2.url + "/invocations",
        content=first.content,
        headers={"Content-Type": first.headers["content-type"]},
    )
    assert second.status_code == 200, second.text
    assert second.json() == head.predict(pre.transform(new_rows)).tolist()


def test_transform_fn_with_predict_fn_fails_to_start(tmp_path: Path, classifier: Any) -> None:
    code = "def transform_fn(model, body, ct, accept):\n    return body\n"
    code += "def predict_fn(data, model):\n    return data\n"
    model_dir = package(tmp_path, classifier, code)
    env = {
        "TANDEM_FRAMEWORK": "sklearn",  # as in an image: `serve` without --framework
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(free_port()),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [PYTHON, "-c", "from containers.cli import serve_entry; serve_entry()", "serve"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert b"defines transform_fn and predict_fn" in proc.stdout + proc.stderr
