"""``tandem serve --backend docker`` for real: built images, a real engine, boto3 in front.

One endpoint holds the ``churn`` example's scikit-learn step (the image ``tandem build`` makes),
a custom image, and a MultiModel scikit-learn container; the tests share the gateway serving it and
run in file order.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import yaml

from gateway.lifecycle.backends.docker import OWNER, owner_id
from pipelines.examples import churn, reference
from pipelines.examples._artifacts import staging, write_tarball
from tests.gateway.docker.conftest import owned, remove_owned
from tests.gateway.harness import sagemaker_client
from tests.support import PYTHON, ROOT, free_port, running, wait_until

if TYPE_CHECKING:
    from docker import DockerClient

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.sklearn]

QUICK = {
    "TANDEM_HEALTH_INTERVAL": "0.5",
    "TANDEM_STOP_GRACE": "3",
    "TANDEM_RESTART_BACKOFF": "0.2",
    "TANDEM_START_TIMEOUT": "90",
}


@pytest.fixture(scope="module")
def churn_models(engine: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the churn example's scikit-learn step, made by the example's recipe.

    Only that step: the example's classifier needs TensorFlow, which these tests do not use.
    """
    pytest.importorskip("sklearn", reason="the churn preprocessing step is a scikit-learn model")
    import joblib

    models = tmp_path_factory.mktemp("models")
    rows, _ = churn.raw_rows(2000)
    preprocess = churn.make_preprocessor().fit(churn.as_matrix(rows))
    with staging() as tmp:
        joblib.dump(preprocess, tmp / "model.joblib")
        write_tarball(tmp, models / "churn" / "preprocess.tar.gz")
    # The MultiModel container's store: the same model under a TargetModel name.
    (models / "store").mkdir()
    shutil.copy(models / "churn" / "preprocess.tar.gz", models / "store" / "prep.tar.gz")
    return models


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, churn_models: Path, custom_image: str) -> Path:
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "dock.yaml"
    csv_out = {
        "TANDEM_SKLEARN_METHOD": "transform",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
    }
    containers = [
        {
            "hostname": "preprocess",
            "framework": "sklearn",
            "model_data": str(churn_models / "churn" / "preprocess.tar.gz"),
            "environment": csv_out,
        },
        {"hostname": "custom", "image": custom_image, "environment": {"GREETING": "hello"}},
        {
            "hostname": "many",
            "framework": "sklearn",
            "mode": "MultiModel",
            "model_data": str(churn_models / "store"),
            "environment": {**csv_out},
        },
    ]
    path.write_text(
        yaml.safe_dump({"name": "dock", "execution": "Direct", "containers": containers})
    )
    return path


@pytest.fixture(scope="module")
def solo(spec: Path, custom_image: str) -> Path:
    """A second endpoint, for the stop test: one network per endpoint."""
    path = spec.parent / "solo.yaml"
    path.write_text(yaml.safe_dump({"name": "solo", "containers": [{"image": custom_image}]}))
    return path


def serve_args(spec: Path | list[Path], state: Path, port: int) -> list[str]:
    specs = [str(p) for p in (spec if isinstance(spec, list) else [spec])]
    serve = [PYTHON, "-m", "gateway", "serve", *specs, "--backend", "docker"]
    return [*serve, "--state-dir", str(state), "--port", str(port)]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def gateway(spec: Path, state: Path, sklearn_image: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        serve_args(spec, state, port), env=QUICK, url=url, timeout=180, log=state / "gw.log"
    ):
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Any:
    return sagemaker_client(gateway)


def invoke(client: Any, hostname: str, body: bytes, content_type: str, **extra: str) -> bytes:
    response = client.invoke_endpoint(
        EndpointName="dock",
        Body=body,
        ContentType=content_type,
        TargetContainerHostname=hostname,
        **extra,
    )
    answer: bytes = response["Body"].read()
    return answer


def describe(url: str, hostname: str) -> dict[str, Any]:
    endpoint = httpx.get(f"{url}/endpoints/dock", timeout=5).json()
    (container,) = [c for c in endpoint["Containers"] if c["ContainerHostname"] == hostname]
    return dict(container)


def test_the_sklearn_image_serves_the_churn_preprocessing_step(
    client: Any, churn_models: Path, tmp_path: Path
) -> None:
    rows, _ = churn.raw_rows(20, seed=7)
    answer = invoke(client, "preprocess", churn.to_csv(rows).encode(), "text/csv")
    served = np.loadtxt(io.StringIO(answer.decode()), delimiter=",", ndmin=2)
    expected = reference.churn_features(rows, tmp_path, churn_models)
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-9)


def test_a_multimodel_sklearn_container_serves_its_target_model(
    client: Any, churn_models: Path, tmp_path: Path
) -> None:
    rows, _ = churn.raw_rows(5, seed=3)
    body = churn.to_csv(rows).encode()
    answer = invoke(client, "many", body, "text/csv", TargetModel="prep.tar.gz")
    served = np.loadtxt(io.StringIO(answer.decode()), delimiter=",", ndmin=2)
    expected = reference.churn_features(rows, tmp_path, churn_models)
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-9)


def test_a_custom_image_gets_the_contract_and_reaches_its_neighbour_by_hostname(
    client: Any, state: Path
) -> None:
    answer = json.loads(
        invoke(client, "custom", b"fetch http://preprocess:8080/ping", "text/plain")
    )
    assert answer["hostname"] == "custom"
    assert answer["greeting"] == "hello"
    assert answer["argv"] == ["serve"]
    assert answer["model_files"] == []  # the (empty) model dir is mounted at /opt/ml/model
    assert answer["model_dir_writable"] is False  # ... read-only
    assert answer["fetched"] == 200  # the endpoint's network resolves its containers' hostnames
    log = state / "endpoints" / "dock" / "dock" / "custom" / "container.log"
    assert "contract server on port 8080" in log.read_text()  # the output reached the gateway


def test_a_killed_container_is_restarted(
    client: Any, gateway: str, engine: DockerClient, state: Path
) -> None:
    selector = {"label": [f"{OWNER}={owner_id(state)}", "tandem.container=custom"]}
    (before,) = engine.api.containers(filters=selector)
    engine.api.kill(before["Id"])
    wait_until(
        lambda: (
            describe(gateway, "custom")["Restarts"] == 1
            and describe(gateway, "custom")["State"] == "InService"
        ),
        timeout=60,
        what="custom restarted",
    )
    (after,) = engine.api.containers(filters=selector)
    assert after["Id"] != before["Id"]
    assert json.loads(invoke(client, "custom", b"again", "text/plain"))["body"] == "again"


def test_stopping_the_gateway_removes_its_containers_and_networks(
    spec: Path, solo: Path, tmp_path: Path, engine: DockerClient, sklearn_image: str
) -> None:
    state = tmp_path / "state"
    label = f"{OWNER}={owner_id(state)}"
    port = free_port()
    args = serve_args([spec, solo], state, port)
    url = f"http://127.0.0.1:{port}"
    try:
        with running(args, env=QUICK, url=url, timeout=180, log=tmp_path / "1.log") as proc:
            crashed = owned(engine, label)
            assert len(crashed[0]) == 4  # dock's three containers and solo's one
            names = {engine.api.inspect_network(n)["Name"] for n in crashed[1]}
            assert names == {f"tandem-{owner_id(state)}-dock", f"tandem-{owner_id(state)}-solo"}
            proc.send_signal(signal.SIGKILL)  # a crash: nothing gets cleaned up ...
            proc.wait(timeout=30)
        assert owned(engine, label) == crashed
        with running(args, env=QUICK, url=url, timeout=180, log=tmp_path / "2.log") as proc:
            containers, networks = owned(engine, label)  # ... until the next start
            assert len(containers) == 4 and not set(containers) & set(crashed[0])
            assert len(networks) == 2
            for name in ("dock", "solo"):
                endpoint = httpx.get(f"{url}/endpoints/{name}", timeout=5).json()
                assert endpoint["EndpointStatus"] == "InService"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        assert owned(engine, label) == ([], [])
    finally:
        remove_owned(engine, label)  # only when an assertion failed


def test_a_missing_image_fails_the_start_naming_it(tmp_path: Path, engine: DockerClient) -> None:
    path = tmp_path / "bad.yaml"
    image = "localhost/tandem-test-absent:0"
    path.write_text(yaml.safe_dump({"name": "bad", "containers": [{"image": image}]}))
    result = subprocess.run(
        serve_args(path, tmp_path / "state", free_port()),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **QUICK},
    )
    assert result.returncode == 1
    assert f"bad/container-1: image {image} is not here and cannot be pulled" in result.stderr
    assert owned(engine, f"{OWNER}={owner_id(tmp_path / 'state')}") == ([], [])
