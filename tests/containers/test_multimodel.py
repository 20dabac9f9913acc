"""The multi-model API (SAGEMAKER_MULTI_MODEL=true) of a real scikit-learn container process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("sklearn")

from containers.errors import BadRequest
from containers.multimodel import check_name
from tests.containers.conftest import Container, StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier

pytestmark = pytest.mark.sklearn
ONE_THREAD = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}
NAMES = ("alpha", "beta.v2", "team/gamma")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    out = {}
    for seed, name in enumerate(NAMES):
        model = train_classifier(seed)
        out[name] = (package(tmp_path_factory.mktemp(f"m{seed}"), model), model)
    return out


@pytest.fixture(scope="module")
def server(start_container: StartContainer) -> Container:
    return start_container("sklearn", multi_model=True, env=ONE_THREAD)


@pytest.fixture(scope="module")
def loaded(server: Container, models: dict[str, tuple[Path, Any]]) -> dict[str, tuple[Path, Any]]:
    for name, (model_dir, _) in models.items():
        response = httpx.post(
            server.url + "/models", json={"model_name": name, "url": str(model_dir)}, timeout=60
        )
        assert response.status_code == 200, response.text
    return models


def test_list_with_pagination(server: Container, loaded: dict[str, tuple[Path, Any]]) -> None:
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
    server: Container, loaded: dict[str, tuple[Path, Any]], name: str
) -> None:
    x = synthetic(8, seed=11)
    want = loaded[name][1].predict(x).tolist()
    direct = httpx.post(
        f"{server.url}/models/{name}/invoke",
        content=csv_body(x),
        headers={"Content-Type": "text/csv"},
    )
    assert direct.status_code == 200, direct.text
    assert direct.json() == want
    by_header = httpx.post(
        server.url + "/invocations",
        content=csv_body(x),
        headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": name},
    )
    assert by_header.json() == want


def test_loading_twice_is_409(server: Container, loaded: dict[str, tuple[Path, Any]]) -> None:
    response = httpx.post(
        server.url + "/models", json={"model_name": "alpha", "url": str(loaded["alpha"][0])}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "model_already_loaded"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"model_name": "../evil", "url": "/tmp"}, "invalid model name"),
        ({"model_name": "ok", "url": "relative/dir"}, "absolute"),
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
    server: Container, loaded: dict[str, tuple[Path, Any]], tmp_path: Path
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


def test_unload_then_404(server: Container, loaded: dict[str, tuple[Path, Any]]) -> None:
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


def test_a_load_over_the_memory_limit_is_507(
    start_container: StartContainer, models: dict[str, tuple[Path, Any]]
) -> None:
    tiny = start_container(
        "sklearn", multi_model=True, env={**ONE_THREAD, "TANDEM_MEMORY_LIMIT_MB": "1"}
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
