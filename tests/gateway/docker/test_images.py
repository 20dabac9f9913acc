"""Which image runs a container, the Dockerfiles, and the errors users see without an engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.lifecycle.backends import BackendError
from gateway.lifecycle.backends.docker import DockerBackend
from gateway.ops.images import (
    DOCKERFILE,
    TARGETS,
    ImageError,
    connect,
    image_for,
    image_name,
    stage,
)
from tests.gateway.processes import endpoint, only, quick_settings
from tests.support import PYTHON, ROOT, free_port

NO_ENGINE = "unix:///nonexistent/tandem-test.sock"


def test_a_framework_runs_its_image_and_image_wins() -> None:
    sklearn = only(endpoint(a={"framework": "sklearn"})).spec
    assert image_for(sklearn) == image_name("sklearn")
    assert image_name("sklearn").startswith("tandem-sklearn:")
    tuned = only(endpoint(a={"framework": "sklearn", "image": "me/sk:2"})).spec
    assert image_for(tuned) == "me/sk:2"
    assert image_for(only(endpoint(a={"command": ["x"]})).spec) is None
    with pytest.raises(ImageError, match="unknown image 'cuda'; choose from: sklearn, pytorch"):
        image_name("cuda")


def test_one_dockerfile_builds_every_image_on_a_base_image() -> None:
    text = (ROOT / DOCKERFILE).read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert "python3 -m venv /opt/venv" in text  # works on python:3.11-slim and on Debian's python3
    stages = {line.split()[-1] for line in text.splitlines() if line.startswith("FROM ")}
    for target in TARGETS:
        name, args = stage(target)
        assert name in stages
        assert args == ({} if target == "gateway" else {"FRAMEWORK": target})
    with pytest.raises(ImageError, match="unknown image 'cuda'"):
        stage("cuda")


def test_the_build_context_leaves_out_venvs_models_and_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".tandem", "pipelines/examples/models", ".git"} <= set(ignored)


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(ImageError, match=f"cannot reach a Docker engine at {NO_ENGINE}"):
        connect()


def test_the_docker_backend_runs_images_only(tmp_path: Path) -> None:
    backend = DockerBackend(quick_settings(tmp_path))
    with pytest.raises(BackendError, match="ep/c: the docker backend runs images"):
        backend.check(only(endpoint(c={"command": ["python", "server.py"]})))
    backend.check(only(endpoint(c={"image": "me/mine:1"})))


def run_tandem(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_serve_without_an_engine_fails_saying_where_it_looked(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "containers": [{"image": "me/mine:1"}]}))
    port = str(free_port())
    state = str(tmp_path / "state")
    args = ["serve", str(spec), "--backend", "docker", "--port", port, "--state-dir", state]
    result = run_tandem(*args, DOCKER_HOST=NO_ENGINE)
    assert result.returncode == 1
    assert f"cannot reach a Docker engine at {NO_ENGINE}" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_refuses_unknown_images_and_needs_an_engine() -> None:
    result = run_tandem("build", "sklearn", "cuda", DOCKER_HOST=NO_ENGINE)
    assert result.returncode == 2
    assert "unknown image(s) cuda; choose from: sklearn, pytorch, tensorflow, gateway" in (
        result.stderr
    )
    result = run_tandem("build", "sklearn", DOCKER_HOST=NO_ENGINE)
    assert result.returncode == 1
    assert f"cannot reach a Docker engine at {NO_ENGINE}" in result.stderr
