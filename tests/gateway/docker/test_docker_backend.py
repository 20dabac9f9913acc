"""``tandem serve --backend docker`` for real: built images, a real engine, boto3 in front.

One endpoint holds the ``churn`` example's scikit-learn step (the image ``tandem build`` makes)
and a custom image; the tests share the gateway serving it and run in file order.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import yaml

from gateway.backends.docker import OWNER, owner_id
from pipelines.examples import MODELS_DIR, churn, reference
from tests.gateway.docker.conftest import owned
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
def churn_models(engine: DockerClient) -> Path:
    """The churn example's artifacts, built where its spec points (if missing)."""
    built = subprocess.run(
        [PYTHON, "-m", "pipelines.examples.build", "churn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return MODELS_DIR / "churn"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, churn_models: Path, custom_image: str) -> Path:
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "dock.yaml"
    containers = [
        {
            "hostname": "preprocess",
            "framework": "sklearn",
            "model_data": str(churn_models / "preprocess.tar.gz"),
            "environment": {
                "TANDEM_SKLEARN_METHOD": "transform",
                "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            },
        },
        {"hostname": "custom", "image": custom_image, "environment": {"GREETING": "hello"}},
    ]
    path.write_text(
        yaml.safe_dump({"name": "dock", "execution": "Direct", "containers": containers})
    )
    return path


def serve_args(spec: Path, state: Path, port: int) -> list[str]:
    serve = [PYTHON, "-m", "gateway", "serve", str(spec), "--backend", "docker"]
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


def invoke(client: Any, hostname: str, body: bytes, content_type: str) -> bytes:
    response = client.invoke_endpoint(
        EndpointName="dock",
        Body=body,
        ContentType=content_type,
        TargetContainerHostname=hostname,
    )
    answer: bytes = response["Body"].read()
    return answer


def describe(url: str, hostname: str) -> dict[str, Any]:
    endpoint = httpx.get(f"{url}/endpoints/dock", timeout=5).json()
    (container,) = [c for c in endpoint["Containers"] if c["ContainerHostname"] == hostname]
    return dict(container)


def test_the_sklearn_image_serves_the_churn_preprocessing_step(client: Any, tmp_path: Path) -> None:
    rows, _ = churn.raw_rows(20, seed=7)
    answer = invoke(client, "preprocess", churn.to_csv(rows).encode(), "text/csv")
    served = np.loadtxt(io.StringIO(answer.decode()), delimiter=",", ndmin=2)
    expected = reference.churn_features(rows, tmp_path)
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
    assert answer["fetched"] == 200  # the endpoint's network resolves its containers' hostnames
    log = state / "dock" / "custom" / "container.log"
    assert "custom server on port 8080" in log.read_text()  # the output reached the gateway


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
    spec: Path, tmp_path: Path, engine: DockerClient, sklearn_image: str
) -> None:
    state = tmp_path / "state"
    label = f"{OWNER}={owner_id(state)}"
    port = free_port()
    args = serve_args(spec, state, port)
    url = f"http://127.0.0.1:{port}"
    with running(args, env=QUICK, url=url, timeout=180, log=tmp_path / "1.log") as proc:
        crashed = owned(engine, label)
        assert len(crashed[0]) == 2 and len(crashed[1]) == 1
        proc.send_signal(signal.SIGKILL)  # a crash: nothing gets cleaned up ...
        proc.wait(timeout=30)
    assert owned(engine, label) == crashed
    with running(args, env=QUICK, url=url, timeout=180, log=tmp_path / "2.log") as proc:
        containers, _ = owned(engine, label)  # ... until the next start
        assert len(containers) == 2 and not set(containers) & set(crashed[0])
        assert httpx.get(f"{url}/endpoints/dock", timeout=5).json()["EndpointStatus"] == "InService"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert owned(engine, label) == ([], [])


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
