"""``tandem compose``: the project it writes, the example project in ``compose/``, a real run."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from gateway.ops.compose import ComposeError, render
from pipelines.spec import load_spec, load_specs
from tests.gateway.docker.conftest import owned
from tests.gateway.harness import sagemaker_client
from tests.support import PYTHON, ROOT, free_port, wait_for_ping

if TYPE_CHECKING:
    from docker import DockerClient

COMPOSE_DIR = ROOT / "compose"
EXAMPLES = ("pipelines/examples/churn.yaml", "pipelines/examples/zoo.yaml")


def tandem(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "gateway", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write_spec(folder: Path, name: str, containers: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "execution": "Direct", "containers": containers}))
    return path


def test_the_example_project_matches_what_tandem_compose_writes() -> None:
    specs = load_specs([ROOT / p for p in EXAMPLES])
    files = render(specs, COMPOSE_DIR, args=f"{' '.join(EXAMPLES)} -o compose")
    assert set(files) == {"compose.yaml", "prometheus.yml", "specs/churn.yaml", "specs/zoo.yaml"}
    for relative, text in files.items():
        assert (COMPOSE_DIR / relative).read_text() == text, f"compose/{relative} is stale"


def test_the_project_wires_sidecars_gateway_and_prometheus(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("42")
    spec = write_spec(
        tmp_path,
        "shop",
        [
            {"hostname": "rank", "framework": "sklearn", "model_data": str(model)},
            {"hostname": "mine", "image": "registry.example/mine:1", "environment": {"A": "1"}},
        ],
    )
    result = tandem("compose", str(spec), "-o", str(tmp_path / "out"), "--port", "9000")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    project = yaml.safe_load((out / "compose.yaml").read_text())
    services = project["services"]
    assert set(services) == {"shop-rank", "shop-mine", "gateway", "prometheus"}
    rank, mine, gateway = services["shop-rank"], services["shop-mine"], services["gateway"]
    assert rank["image"].startswith("tandem-sklearn:")
    assert rank["build"]["dockerfile"] == "Dockerfile"
    assert rank["build"]["target"] == "framework"
    assert rank["build"]["args"]["FRAMEWORK"] == "sklearn"
    assert (out / rank["build"]["context"]).resolve() == ROOT
    assert rank["networks"] == {"shop": {"aliases": ["rank"]}}
    assert rank["volumes"] == ["./models/shop/rank:/opt/ml/model:ro"]
    assert (out / "models" / "shop" / "rank" / "weights.txt").read_text() == "42"
    assert mine["image"] == "registry.example/mine:1" and "build" not in mine
    assert mine["environment"] == {"A": "1", "SAGEMAKER_BIND_TO_PORT": "8080"}
    assert gateway["environment"]["TANDEM_BACKEND"] == "external"
    assert gateway["ports"] == ["${TANDEM_PORT:-9000}:8080"]
    assert set(gateway["networks"]) == {"default", "shop"}
    assert "gateway:8080" in (out / "prometheus.yml").read_text()
    # The gateway's copy of the spec is valid and leaves the models to the sidecars.
    copy = load_spec(out / "specs" / "shop.yaml")
    assert [c.hostname for c in copy.containers] == ["rank", "mine"]
    assert all(c.model_data is None for c in copy.containers)


def test_compose_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "odd",
        [
            {"hostname": "cmd", "command": ["python", "server.py"]},
            {"hostname": "many", "framework": "sklearn", "mode": "MultiModel", "model_data": "."},
        ],
    )
    with pytest.raises(ComposeError) as caught:
        render(load_specs([spec]), tmp_path / "out")
    assert "odd/cmd: compose runs images" in str(caught.value)
    assert "odd/many: MultiModel containers cannot run under compose yet" in str(caught.value)
    result = tandem("compose", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "odd/cmd: compose runs images" in result.stderr
    assert not (tmp_path / "out" / "compose.yaml").exists()


def test_a_missing_model_fails_naming_it(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "gone", [{"hostname": "a", "framework": "sklearn", "model_data": "./nope.tar.gz"}]
    )
    result = tandem("compose", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{tmp_path / 'nope.tar.gz'}: no such file or directory" in result.stderr


# ---- for real: docker-compose against the engine -------------------------------------------------


def compose_client() -> list[str] | None:
    """``docker-compose`` (Debian's v1 works with podman's API), else ``podman-compose``."""
    for name in ("docker-compose", "podman-compose"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


@pytest.fixture
def project(
    tmp_path: Path, engine: DockerClient, gateway_image: str, custom_image: str
) -> Iterator[tuple[list[str], Path, dict[str, str]]]:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client (docker-compose or podman-compose) on PATH")
    model = tmp_path / "model"
    model.mkdir()
    (model / "note.txt").write_text("mounted")
    spec = write_spec(
        tmp_path,
        "duo",
        [
            {"hostname": "echo", "image": custom_image, "model_data": str(model)},
            {"hostname": "greet", "image": custom_image, "environment": {"GREETING": "hi"}},
        ],
    )
    out = tmp_path / "project"
    result = tandem("compose", str(spec), "-o", str(out), "--no-prometheus")
    assert result.returncode == 0, result.stderr
    name = f"tandemtest{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TANDEM_PORT": str(free_port())}
    command = [*client, "-p", name, "-f", str(out / "compose.yaml")]
    try:
        yield command, out, env
    finally:
        subprocess.run([*command, "down", "-t", "5"], env=env, capture_output=True, timeout=120)


@pytest.mark.docker
@pytest.mark.slow
def test_the_project_comes_up_answers_and_goes_down_leaving_nothing(
    project: tuple[list[str], Path, dict[str, str]], engine: DockerClient
) -> None:
    """A project ``tandem compose`` writes for the custom image, up for real with a compose client.

    The committed ``compose/`` project itself is never brought up here: it pulls
    ``prom/prometheus`` (no registry here) and builds the TensorFlow and PyTorch images (too slow).
    """
    command, _, env = project
    name = command[command.index("-p") + 1]
    up = subprocess.run(
        [*command, "up", "-d", "--no-build", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    url = f"http://127.0.0.1:{env['TANDEM_PORT']}"
    try:
        wait_for_ping(url, timeout=120)
    except TimeoutError:
        logs = subprocess.run([*command, "logs"], env=env, capture_output=True, text=True)
        raise AssertionError(logs.stdout[-3000:]) from None
    client = sagemaker_client(url)

    def ask(hostname: str, body: bytes) -> dict[str, Any]:
        response = client.invoke_endpoint(
            EndpointName="duo",
            Body=body,
            ContentType="text/plain",
            TargetContainerHostname=hostname,
        )
        answer: dict[str, Any] = yaml.safe_load(response["Body"].read())
        return answer

    echo = ask("echo", b"fetch http://greet:8080/ping")
    assert echo["hostname"] == "echo" and echo["model_files"] == ["note.txt"]
    assert echo["model_dir_writable"] is False  # mounted read-only
    assert echo["fetched"] == 200  # sidecars reach each other by hostname
    assert ask("greet", b"x")["greeting"] == "hi"
    label = f"com.docker.compose.project={name}"
    assert len(owned(engine, label)[0]) == 3
    down = subprocess.run(
        [*command, "down", "-t", "5"], env=env, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stderr[-3000:]
    assert owned(engine, label) == ([], [])
    assert not engine.api.networks(names=[f"{name}_duo", f"{name}_default"])
