"""The multi-model API (SAGEMAKER_MULTI_MODEL=true) of a real container process, per framework."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from containers.errors import BadRequest
from containers.registry import check_name, model_path
from tests.containers.conftest import (
    KERAS_NUMPY_COPY,
    TORCHSCRIPT_DEPRECATED,
    Container,
    StartContainer,
    package_model,
)

ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}
NAMES = ("alpha", "beta.v2", "team/gamma")
Predict = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Flavor:
    """What the tests need of one framework: tiny models, input rows, the JSON answer's payload."""

    framework: str
    #: Train a model with this seed, package it under ``root``; the model dir and its predict.
    build: Callable[[Path, int], tuple[Path, Predict]]
    rows: Callable[[int, int], np.ndarray]
    #: The predictions in a JSON answer.
    unwrap: Callable[[Any], Any] = lambda body: body
    #: More container environment (several worker processes).
    env: dict[str, str] = field(default_factory=dict)


def sklearn_flavor() -> Flavor:
    pytest.importorskip("sklearn")
    from tests.containers.sklearn_models import package, synthetic, train_classifier

    def build(root: Path, seed: int) -> tuple[Path, Predict]:
        model = train_classifier(seed)
        return package(root, model), model.predict

    return Flavor("sklearn", build, synthetic)


def pytorch_flavor() -> Flavor:
    pytest.importorskip("torch")
    from tests.containers.test_pytorch_framework import expected, synthetic, train_regressor
    from tests.containers.test_server_pytorch import artifacts

    def build(root: Path, seed: int) -> tuple[Path, Predict]:
        model = train_regressor(root / "source", seed)
        model_dir = package_model(root / "package", artifacts(root / "source"))
        return model_dir, lambda x: expected(model, x)

    return Flavor("pytorch", build, synthetic)


def tensorflow_flavor() -> Flavor:
    pytest.importorskip("tensorflow")
    from tests.containers.test_server_tensorflow import artifacts
    from tests.containers.test_tensorflow_framework import (
        expected,
        save_keras,
        save_savedmodel,
        synthetic,
        train_keras,
    )

    def build(root: Path, seed: int) -> tuple[Path, Predict]:
        model = train_keras(seed)
        # Both artifact kinds: a SavedModel in TF Serving's layout, or a Keras file.
        (save_savedmodel if seed % 2 == 0 else save_keras)(model, root / "source")
        model_dir = package_model(root / "package", artifacts(root / "source"))
        return model_dir, lambda x: expected(model, x)

    return Flavor("tensorflow", build, synthetic, lambda body: body["predictions"])


def sklearn_workers_flavor() -> Flavor:
    """The same API from a router in front of two worker processes."""
    return replace(sklearn_flavor(), env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})


FLAVORS = {
    "sklearn": sklearn_flavor,
    "sklearn-2-workers": sklearn_workers_flavor,
    "pytorch": pytorch_flavor,
    "tensorflow": tensorflow_flavor,
}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sklearn", marks=pytest.mark.sklearn),
        pytest.param("sklearn-2-workers", marks=pytest.mark.sklearn),
        pytest.param(
            "pytorch",
            marks=[pytest.mark.pytorch, pytest.mark.filterwarnings(TORCHSCRIPT_DEPRECATED)],
        ),
        pytest.param(
            "tensorflow",
            marks=[pytest.mark.tensorflow, pytest.mark.filterwarnings(KERAS_NUMPY_COPY)],
        ),
    ],
)
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return FLAVORS[request.param]()


@pytest.fixture(scope="module")
def models(
    flavor: Flavor, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Predict]]:
    return {
        name: flavor.build(tmp_path_factory.mktemp(f"{flavor.framework}-m{seed}"), seed)
        for seed, name in enumerate(NAMES)
    }


@pytest.fixture(scope="module")
def models_root(flavor: Flavor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$SAGEMAKER_BASE_DIR/models`` of the server: relative ``url``s resolve here."""
    root = tmp_path_factory.mktemp(f"{flavor.framework}-opt-ml") / "models"
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def server(start_container: StartContainer, flavor: Flavor, models_root: Path) -> Container:
    env = {**ONE_THREAD, **flavor.env, "SAGEMAKER_BASE_DIR": str(models_root.parent)}
    return start_container(flavor.framework, multi_model=True, env=env)


@pytest.fixture(scope="module")
def loaded(
    server: Container, models: dict[str, tuple[Path, Predict]]
) -> dict[str, tuple[Path, Predict]]:
    for name, (model_dir, _) in models.items():
        response = httpx.post(
            server.url + "/models", json={"model_name": name, "url": str(model_dir)}, timeout=60
        )
        assert response.status_code == 200, response.text
    return models


def csv_body(rows: np.ndarray) -> bytes:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows.tolist()).encode()


def assert_predicts(flavor: Flavor, response: httpx.Response, want: Any) -> None:
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(flavor.unwrap(response.json()), want, rtol=1e-5, atol=1e-6)


def test_list_with_pagination(server: Container, loaded: dict[str, tuple[Path, Predict]]) -> None:
    first = httpx.get(server.url + "/models", params={"limit": 2}).json()
    assert len(first["models"]) == 2 and "nextPageToken" in first
    rest = httpx.get(
        server.url + "/models", params={"limit": 2, "next_page_token": first["nextPageToken"]}
    ).json()
    assert "nextPageToken" not in rest
    listed = {m["modelName"]: m["modelUrl"] for m in first["models"] + rest["models"]}
    assert listed == {name: str(model_dir) for name, (model_dir, _) in loaded.items()}
    described = httpx.get(server.url + "/models/team/gamma").json()
    assert described == {"modelName": "team/gamma", "modelUrl": str(loaded["team/gamma"][0])}


@pytest.mark.parametrize("name", NAMES)
def test_invoke_each_model(
    server: Container, flavor: Flavor, loaded: dict[str, tuple[Path, Predict]], name: str
) -> None:
    x = flavor.rows(8, 11)
    want = loaded[name][1](x)
    direct = httpx.post(
        f"{server.url}/models/{name}/invoke",
        content=csv_body(x),
        headers={"Content-Type": "text/csv"},
    )
    assert_predicts(flavor, direct, want)
    by_header = httpx.post(
        server.url + "/invocations",
        content=csv_body(x),
        headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": name},
    )
    assert_predicts(flavor, by_header, want)


def test_loading_twice_is_409(server: Container, loaded: dict[str, tuple[Path, Predict]]) -> None:
    response = httpx.post(
        server.url + "/models", json={"model_name": "alpha", "url": str(loaded["alpha"][0])}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "model_already_loaded"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"model_name": "../evil", "url": "/tmp"}, "invalid model name"),
        ({"model_name": "ok", "url": "relative/dir"}, "not an existing directory"),
        ({"model_name": "ok", "url": "../outside"}, '".."'),
        ({"model_name": "ok", "url": "/definitely/not/here"}, "not an existing directory"),
        ({"model_name": "ok", "url": "s3://bucket/model"}, "local directory"),
        ({"name": "ok"}, "model_name"),
    ],
)
def test_bad_load_requests_are_400(server: Container, spec: dict[str, str], fragment: str) -> None:
    response = httpx.post(server.url + "/models", json=spec)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_failed_load_is_dropped(
    server: Container, loaded: dict[str, tuple[Path, Predict]], tmp_path: Path
) -> None:
    response = httpx.post(
        server.url + "/models", json={"model_name": "empty", "url": str(tmp_path)}
    )
    assert response.status_code == 500
    assert response.json()["error"] == "model_load_error"
    assert httpx.get(server.url + "/models/empty").status_code == 404
    retry = httpx.post(
        server.url + "/models", json={"model_name": "empty", "url": str(loaded["alpha"][0])}
    )
    assert retry.status_code == 200
    assert httpx.delete(server.url + "/models/empty").status_code == 200


def test_unload_then_404(server: Container, loaded: dict[str, tuple[Path, Predict]]) -> None:
    name = "beta.v2"
    assert httpx.delete(f"{server.url}/models/{name}").status_code == 200
    for response in (
        httpx.get(f"{server.url}/models/{name}"),
        httpx.delete(f"{server.url}/models/{name}"),
        httpx.post(
            f"{server.url}/models/{name}/invoke", content=b"1", headers={"Content-Type": "text/csv"}
        ),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "model_not_found"
    names = [m["modelName"] for m in httpx.get(server.url + "/models").json()["models"]]
    assert name not in names
    reload = httpx.post(
        server.url + "/models", json={"model_name": name, "url": str(loaded[name][0])}
    )
    assert reload.status_code == 200


def test_bad_pagination_and_missing_target(server: Container) -> None:
    assert httpx.get(server.url + "/models", params={"limit": 0}).status_code == 400
    assert httpx.get(server.url + "/models", params={"limit": "x"}).status_code == 400
    assert httpx.get(server.url + "/models", params={"next_page_token": "zz"}).status_code == 400
    response = httpx.post(
        server.url + "/invocations", content=b"1", headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 400
    assert "X-Amzn-SageMaker-Target-Model" in response.json()["message"]


def test_relative_urls_resolve_under_the_models_root(
    server: Container,
    flavor: Flavor,
    loaded: dict[str, tuple[Path, Predict]],
    models_root: Path,
) -> None:
    model_dir, predict = loaded["alpha"]
    shutil.copytree(model_dir, models_root / "team" / "alpha")
    response = httpx.post(
        server.url + "/models", json={"model_name": "relative", "url": "team/alpha"}, timeout=60
    )
    assert response.status_code == 200, response.text
    described = httpx.get(server.url + "/models/relative").json()
    assert described == {"modelName": "relative", "modelUrl": "team/alpha"}
    x = flavor.rows(3, 12)
    invoked = httpx.post(
        server.url + "/models/relative/invoke",
        content=csv_body(x),
        headers={"Content-Type": "text/csv"},
    )
    assert_predicts(flavor, invoked, predict(x))
    assert httpx.delete(server.url + "/models/relative").status_code == 200
    # A model dir outside the root stays out of reach, by ".." or through a symlink.
    (models_root / "escape").symlink_to(model_dir)
    for url in ("escape", "file://escape", "team/../../" + model_dir.name, "."):
        refused = httpx.post(server.url + "/models", json={"model_name": "out", "url": url})
        assert refused.status_code == 400, (url, refused.text)
    assert httpx.get(server.url + "/models/out").status_code == 404


def test_a_load_over_the_memory_limit_is_507(
    start_container: StartContainer, flavor: Flavor, models: dict[str, tuple[Path, Predict]]
) -> None:
    tiny = start_container(
        flavor.framework,
        multi_model=True,
        env={**ONE_THREAD, **flavor.env, "TANDEM_MEMORY_LIMIT_MB": "1"},
    )
    response = httpx.post(
        tiny.url + "/models", json={"model_name": "alpha", "url": str(models["alpha"][0])}
    )
    assert response.status_code == 507
    assert response.json()["error"] == "insufficient_memory"
    assert "1 MiB" in response.json()["message"]
    assert httpx.get(tiny.url + "/models").json() == {"models": []}
    assert httpx.get(tiny.url + "/ping").status_code == 200


@pytest.mark.parametrize("name", ["..", "a/../b", "/abs", "a//b", ".hidden", "a b", "x" * 1025])
def test_model_names_refuse_path_tricks(name: str) -> None:
    with pytest.raises(BadRequest):
        check_name(name)


def test_relative_model_paths_stay_under_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "models", tmp_path / "outside"
    (root / "team" / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "inner").symlink_to(root / "team" / "a")
    (root / "out").symlink_to(outside)
    assert model_path("team/a", root) == (root / "team" / "a").resolve()
    assert model_path("file://team/a/", root) == (root / "team" / "a").resolve()
    assert model_path("inner", root) == (root / "team" / "a").resolve()
    assert model_path(str(outside), root) == outside  # absolute urls are the caller's choice
    for url, fragment in [
        ("../outside", '".."'),
        ("team/../../outside", '".."'),
        ("out", "not under the models root"),
        ("out/", "not under the models root"),
        (".", "not under the models root"),
        ("team/missing", "not an existing directory"),
    ]:
        with pytest.raises(BadRequest, match=fragment):
            model_path(url, root)
