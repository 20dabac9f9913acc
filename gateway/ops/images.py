"""Images: which one runs a container, and building Tandem's own from the source checkout.

Shared by the docker backend, ``tandem build`` and ``tandem compose``. The ``docker`` SDK is
imported only by ``connect``, so that importing this module costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import TandemError
from pipelines.spec import ContainerSpec, Framework

if TYPE_CHECKING:
    from docker import DockerClient

#: The repository root: the build context of every Tandem image.
ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS: tuple[str, ...] = tuple(f.value for f in Framework)
GATEWAY = "gateway"
TARGETS: tuple[str, ...] = (*FRAMEWORKS, GATEWAY)
#: The one Dockerfile of every image, relative to the build context (the repository root).
DOCKERFILE = Path("Dockerfile")
FRAMEWORK_STAGE = "framework"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
#: Seconds one Docker API call may take (image builds stream, so they are not bound by it).
API_TIMEOUT = 120
DEFAULT_HOST = "unix:///var/run/docker.sock"
#: Docker Engine API version: Docker 20.10 and later, and podman 3 and later, speak it.
API_VERSION = "1.41"
#: Connections per client: each running container holds one for its log stream.
MAX_POOL = 64


class ImageError(TandemError):
    """An image cannot be found, built or reached; the message says which and why."""


def image_tag() -> str:
    """Images carry the package's version, so that an upgrade does not run stale images."""
    try:
        return version("tandem")
    except PackageNotFoundError:
        return "latest"


def image_name(target: str) -> str:
    """``tandem-sklearn:0.1.0`` for a framework, ``tandem-gateway:0.1.0`` for the gateway."""
    if target not in TARGETS:
        raise ImageError(f"unknown image {target!r}; choose from: {', '.join(TARGETS)}")
    return f"tandem-{target}:{image_tag()}"


def image_for(spec: ContainerSpec) -> str | None:
    """The image a container runs: its ``image``, else its framework's; None for a command."""
    if spec.image is not None:
        return spec.image
    if spec.framework is not None:
        return image_name(spec.framework.value)
    return None


def stage(target: str) -> tuple[str, dict[str, str]]:
    """The stage of the one Dockerfile that builds ``target``, and the build arguments it takes.

    One stage serves every framework (with ``FRAMEWORK``): the classic builder runs every stage
    above the target, so a stage per framework would install the others' libraries too.
    """
    if target == GATEWAY:
        return GATEWAY, {}
    if target in FRAMEWORKS:
        return FRAMEWORK_STAGE, {"FRAMEWORK": target}
    raise ImageError(f"unknown image {target!r}; choose from: {', '.join(TARGETS)}")


def connect(timeout: int | None = API_TIMEOUT) -> DockerClient:
    """A client for the engine at ``DOCKER_HOST`` (or the default socket), checked with a ping.

    ``timeout`` bounds each API call; None suits streams (logs, stats) that idle for long.
    """
    try:
        import docker
        from docker.errors import DockerException
        from requests import RequestException
    except ImportError as exc:
        raise ImageError(
            "the docker backend needs the Docker SDK: pip install 'tandem[docker]'"
        ) from exc
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    where = host if "DOCKER_HOST" in os.environ else f"{host} (set DOCKER_HOST to change it)"
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        raise ImageError(f"cannot reach a Docker engine at {where}: no such socket")
    # A fixed API version: asking the engine for its own would connect before we can close.
    client = docker.from_env(timeout=timeout, max_pool_size=MAX_POOL, version=API_VERSION)
    try:
        client.ping()
    except (DockerException, RequestException) as exc:
        client.close()
        raise ImageError(f"cannot reach a Docker engine at {where}: {exc}") from exc
    return client


def require(client: DockerClient, image: str, *, hint: str) -> None:
    """Make sure ``image`` is present: pull it when it is not; ``hint`` says how to get it."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    except APIError as exc:
        raise ImageError(f"cannot inspect image {image}: {exc.explanation or exc}") from exc
    try:
        client.images.pull(image)
    except APIError as exc:
        raise ImageError(f"image {image} is not here and cannot be pulled ({hint})") from exc


def build(
    client: DockerClient,
    target: str,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    on_line: Callable[[str], None] = lambda _: None,
    context: Path = ROOT,
) -> str:
    """Build ``target``'s image from the source checkout; its name. Output goes to ``on_line``."""
    name = image_name(target)
    target_stage, args = stage(target)
    if not (context / DOCKERFILE).is_file() or not (context / "pyproject.toml").is_file():
        raise ImageError(
            f"{context} is not a Tandem source checkout (no {DOCKERFILE}); "
            "tandem build needs one: git clone the project and run it there"
        )
    from docker.errors import APIError, DockerException

    try:
        chunks: Iterable[dict[str, Any]] = client.api.build(
            path=str(context),
            dockerfile=str(DOCKERFILE),
            tag=name,
            target=target_stage,
            buildargs={"BASE_IMAGE": base_image, **args},
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in chunks:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ImageError(f"building {name} failed: {str(detail).strip()}")
            text = chunk.get("stream")
            if isinstance(text, str):
                for line in text.splitlines():
                    if line.strip():
                        on_line(line)
    except (APIError, DockerException) as exc:
        raise ImageError(f"building {name} failed: {exc}") from exc
    return name
