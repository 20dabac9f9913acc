"""The docker backend: every container is a Docker container, on one network per endpoint.

It speaks the Docker Engine API through the ``docker`` SDK, so it runs against Docker or podman's
API service alike, wherever ``DOCKER_HOST`` points (the engine must run on this machine: each
container's port 8080 is published on a ``127.0.0.1`` port, which the gateway calls). The engine
picks that port and binds it at once: a port picked here could be taken by another process before
the engine bound it. Inside an endpoint's network each container answers by its hostname, as on
SageMaker.

Everything it creates carries the label ``tandem.owner=<id of this host and state folder>``, so a
later gateway with the same state folder removes what a crashed one left behind, and ``stop``
removes everything. The SDK blocks, so API calls run in threads; each container's output is
followed by a thread of its own (a log stream ends when the container does).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.container_env import CODE_FOLDER, SUBMIT_ENV, spec_environment, submitted_code
from gateway.lifecycle.backends.base import BackendError, LineSink, can_listen
from gateway.lifecycle.backends.docker_handle import DockerHandle
from gateway.live import ContainerRuntime
from gateway.ops.images import ImageError, connect, image_for, require
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from docker import APIClient, DockerClient

logger = logging.getLogger("tandem.backend")

OWNER = "tandem.owner"
CONTAINER_PORT = 8080
PUBLISH_HOST = "127.0.0.1"
MODEL_DIR = "/opt/ml/model"
MODELS_DIR = "/opt/ml/models"
#: The user's code fetched from ``SAGEMAKER_SUBMIT_DIRECTORY`` (SageMaker's code folder).
CODE_DIR = "/opt/ml/code"


def owner_id(state_dir: Path) -> str:
    """Who started a resource: this machine and state folder (two gateways never share one)."""
    key = f"{socket.gethostname()}:{state_dir.resolve()}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class DockerBackend:
    name = "docker"

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self.owner = owner_id(settings.state_dir)
        self._client: DockerClient | None = None
        self._streams: DockerClient | None = None
        self._networks: dict[str, str] = {}
        self._present: set[str] = set()
        self._lock = asyncio.Lock()
        #: The host port each container last had: a restart asks for it again, to keep the URL.
        self._ports: dict[tuple[str, str], int] = {}

    def check(self, container: ContainerRuntime) -> None:
        if image_for(container.spec) is None:
            raise BackendError(
                f"{container.endpoint}/{container.hostname}: the docker backend runs images; "
                "give it an image (or a framework), or use the process backend for a command"
            )

    def name_of(self, container: ContainerRuntime) -> str:
        return f"tandem-{self.owner}-{container.deployment}-{container.hostname}"

    def network_name(self, endpoint: str) -> str:
        return f"tandem-{self.owner}-{endpoint}"

    def environment(self, container: ContainerRuntime) -> dict[str, str]:
        """The spec's environment, then the contract's (which must win)."""
        env = spec_environment(container, self._settings.async_max_bytes)
        env.update(SAGEMAKER_BIND_TO_PORT=str(CONTAINER_PORT), PYTHONUNBUFFERED="1")
        if submitted_code(container) is not None:  # fetched by the supervisor, mounted here
            env[SUBMIT_ENV] = CODE_DIR
        # An image of its own installs the code's requirements.txt, as SageMaker's do.
        env.setdefault("TANDEM_INSTALL_REQUIREMENTS", "true")
        return env

    def binds(self, container: ContainerRuntime, model_dir: Path, base_dir: Path) -> list[str]:
        """Read-only model mounts: ``/opt/ml/model``, or ``/opt/ml/models`` for MultiModel."""
        code = [f"{base_dir / CODE_FOLDER}:{CODE_DIR}:ro"] if submitted_code(container) else []
        if not container.multi_model:
            return [f"{model_dir}:{MODEL_DIR}:ro", *code]
        # The gateway's model cache; also at its own path, which ``POST /models`` names.
        models = base_dir / "models"
        models.mkdir(parents=True, exist_ok=True)
        return [f"{models}:{MODELS_DIR}:ro", f"{models}:{models}:ro", *code]

    async def start(
        self, container: ContainerRuntime, *, model_dir: Path, base_dir: Path, on_line: LineSink
    ) -> DockerHandle:
        self.check(container)
        key = (container.deployment, container.hostname)
        client = await self._connect()
        image = image_for(container.spec)
        assert image is not None
        await self._require(client, image, container)
        network = await self._network(client, container.deployment)
        model_dir.mkdir(parents=True, exist_ok=True)
        labels = {
            OWNER: self.owner,
            "tandem.endpoint": container.endpoint,
            "tandem.container": container.hostname,
            "tandem.state": str(self._settings.state_dir.resolve()),
        }
        api = client.api
        name = self.name_of(container)

        def create(port: int | None) -> tuple[str, int]:
            """Start the container; its id, and the host port it is published on."""
            with contextlib.suppress(Exception):
                api.remove_container(name, force=True)  # a stopped instance of an earlier start
            host_config = api.create_host_config(
                **_limits(container),
                binds=self.binds(container, model_dir, base_dir),
                # No port: the engine picks a free one and binds it at once.
                port_bindings={CONTAINER_PORT: (PUBLISH_HOST, port) if port else (PUBLISH_HOST,)},
                network_mode=network,
            )
            endpoint_config = api.create_endpoint_config(aliases=[container.hostname])
            cid: str = api.create_container(
                image,
                command=["serve"],
                name=name,
                hostname=container.hostname,
                environment=self.environment(container),
                labels=labels,
                ports=[CONTAINER_PORT],
                host_config=host_config,
                networking_config=api.create_networking_config({network: endpoint_config}),
            )["Id"]
            try:
                api.start(cid)
            except Exception:
                with contextlib.suppress(Exception):
                    api.remove_container(cid, force=True)
                raise
            return cid, published_port(api, cid)

        from docker.errors import DockerException
        from requests import RequestException

        # The port of the last start if it is still free (the URL stays), else the engine's pick.
        wanted = self._ports.get(key)
        if wanted is not None and not can_listen(wanted, PUBLISH_HOST):
            wanted = None
        try:
            cid, port = await asyncio.to_thread(create, wanted)
        except (DockerException, RequestException) as exc:
            raise BackendError(f"cannot start {image}: {_why(exc)}") from exc
        self._ports[key] = port
        logger.debug("%s/%s: container %s on port %s", *key, cid[:12], port)
        assert self._streams is not None
        return DockerHandle(
            api,
            self._streams.api,
            cid,
            f"http://{PUBLISH_HOST}:{port}",
            on_line,
            watch_memory=container.multi_model,
        )

    async def reap_leftovers(self) -> int:
        client = await self._connect()
        async with self._lock:
            self._networks.clear()
            return await asyncio.to_thread(self._reap, client)

    def _reap(self, client: DockerClient) -> int:
        """Remove every container, then every network, labelled with this gateway's owner id."""
        from docker.errors import APIError

        selector = {"label": f"{OWNER}={self.owner}"}
        found = client.api.containers(all=True, filters=selector)
        for info in found:
            with contextlib.suppress(APIError):
                client.api.remove_container(info["Id"], force=True)
        for net in client.api.networks(filters=selector):
            try:
                client.api.remove_network(net["Id"])
            except APIError as exc:
                logger.warning("cannot remove network %s: %s", net.get("Name"), _why(exc))
        if found:
            logger.info("removed %d container(s) of an earlier run", len(found))
        return len(found)

    async def _connect(self) -> DockerClient:
        if self._client is None:
            try:
                self._client = await asyncio.to_thread(connect)
                self._streams = await asyncio.to_thread(connect, timeout=None)
            except ImageError as exc:
                raise BackendError(str(exc)) from exc
        return self._client

    async def _require(self, client: DockerClient, image: str, container: ContainerRuntime) -> None:
        if image in self._present:
            return
        framework = container.spec.framework
        hint = f"build it with: tandem build {framework.value}" if framework else "push or load it"
        try:
            await asyncio.to_thread(require, client, image, hint=hint)
        except ImageError as exc:
            raise BackendError(str(exc)) from exc
        self._present.add(image)

    async def _network(self, client: DockerClient, endpoint: str) -> str:
        """The endpoint's own bridge network, created on first use."""
        from docker.errors import APIError

        async with self._lock:
            if endpoint not in self._networks:
                name = self.network_name(endpoint)
                labels = {OWNER: self.owner, "tandem.endpoint": endpoint}
                try:
                    await asyncio.to_thread(
                        client.api.create_network, name, driver="bridge", labels=labels
                    )
                except APIError as exc:
                    raise BackendError(
                        f"{endpoint}: cannot create network {name}: {_why(exc)}"
                    ) from exc
                self._networks[endpoint] = name
            return self._networks[endpoint]


def published_port(api: APIClient, cid: str) -> int:
    """The host port the engine gave the container's port 8080."""
    for binding in api.port(cid, CONTAINER_PORT) or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    raise BackendError(f"the engine published no host port for container {cid[:12]}")


def _why(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)


def _limits(container: ContainerRuntime) -> dict[str, object]:
    """An inference component's copy is held to its reservation: its CPU cores, and its
    ``MaxMemoryRequiredInMb`` (memory beyond it is the kernel's OOM kill, a restart)."""
    reserved = container.reservation
    if reserved is None:
        return {}
    limits: dict[str, object] = {}
    if reserved.cores > 0:
        limits["nano_cpus"] = int(reserved.cores * 1e9)
    if reserved.memory_mb > 0:
        limits["mem_reservation"] = f"{reserved.memory_mb}m"
    if reserved.max_memory_mb is not None:
        limits["mem_limit"] = f"{reserved.max_memory_mb}m"
    return limits
