"""A real Docker-API engine for the ``docker`` tests, and the images they share (built once).

The engine is whatever ``DOCKER_HOST`` names (``scripts/podman.sh`` sets up podman's API service
where no Docker runs); without one, the tests are skipped and say why. Tandem's images are built
with ``tandem build`` on ``TANDEM_TEST_BASE_IMAGE`` (the podman script's locally built Debian
image), else on the default ``python:3.11-slim``.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.ops.images import DEFAULT_BASE_IMAGE, ImageError, connect, image_name
from tests.support import PYTHON, ROOT

if TYPE_CHECKING:
    from docker import DockerClient

#: The custom image's build context: the contract server it copies is in it.
CUSTOM_IMAGE_CONTEXT = ROOT / "tests" / "gateway"
CUSTOM_IMAGE_DOCKERFILE = "docker/custom_image/Dockerfile"
#: Seconds one image build may take (scikit-learn: about 90 s from scratch on 2 cores).
BUILD_TIMEOUT = 900


@pytest.fixture(scope="session")
def engine() -> DockerClient:
    try:
        import docker  # noqa: F401
    except ImportError:
        pytest.skip("the docker SDK is not installed (pip install 'tandem[docker]')")
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        pytest.skip("no Docker engine: set DOCKER_HOST (scripts/podman.sh sets up podman)")
    try:
        return connect()
    except ImageError as exc:
        pytest.skip(f"no usable Docker engine: {exc}")


@pytest.fixture(scope="session")
def base_image() -> str:
    return os.environ.get("TANDEM_TEST_BASE_IMAGE") or DEFAULT_BASE_IMAGE


def _cli_build(target: str, base_image: str) -> str:
    """Build ``target`` with ``tandem build``, as a user would; its image name."""
    started = time.monotonic()
    result = subprocess.run(
        [PYTHON, "-m", "gateway", "build", target, "--base-image", base_image],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        pytest.fail(f"tandem build {target} failed ({result.returncode}):\n{tail}\n{result.stderr}")
    name = image_name(target)
    assert f"built {name} in" in result.stderr
    print(f"\nbuilt {name} in {time.monotonic() - started:.1f}s (tandem build)")
    return name


@pytest.fixture(scope="session")
def sklearn_image(engine: DockerClient, base_image: str) -> str:
    return _cli_build("sklearn", base_image)


@pytest.fixture(scope="session")
def gateway_image(engine: DockerClient, base_image: str) -> str:
    return _cli_build("gateway", base_image)


@pytest.fixture(scope="session")
def custom_image(engine: DockerClient, base_image: str) -> Iterator[str]:
    """A tiny image that speaks the contract, as a user's own image would."""
    name = f"tandem-test-custom:{uuid.uuid4().hex[:8]}"
    engine.images.build(
        path=str(CUSTOM_IMAGE_CONTEXT),
        dockerfile=CUSTOM_IMAGE_DOCKERFILE,
        tag=name,
        buildargs={"BASE_IMAGE": base_image},
        rm=True,
    )
    yield name
    engine.images.remove(name, force=True)


def owned(engine: DockerClient, label: str) -> tuple[list[str], list[str]]:
    """Ids of the containers (all states) and networks that carry ``label``, sorted."""
    selector = {"label": label}
    containers = sorted(c["Id"] for c in engine.api.containers(all=True, filters=selector))
    networks = sorted(n["Id"] for n in engine.api.networks(filters=selector))
    return containers, networks


def remove_owned(engine: DockerClient, label: str) -> None:
    """Remove what carries ``label`` (a test that failed halfway must not leave it running)."""
    containers, networks = owned(engine, label)
    for cid in containers:
        engine.api.remove_container(cid, force=True)
    for nid in networks:
        engine.api.remove_network(nid)
