"""The docker backend: every container is a Docker container, on one network per endpoint.

It speaks the Docker Engine API through the ``docker`` SDK, so it runs against Docker or podman's
API service alike, wherever ``DOCKER_HOST`` points (the engine must run on this machine: each
container's port 8080 is published on a free ``127.0.0.1`` port, which the gateway calls). Inside an
endpoint's network each container answers by its hostname, as on SageMaker.

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
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.backends.base import BackendError, LineSink
from gateway.backends.process import free_port, multi_model_environment
from gateway.images import ImageError, connect, image_for, require
from gateway.runtime import ContainerRuntime
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from docker import APIClient, DockerClient

logger = logging.getLogger("tandem.backend")

OWNER = "tandem.owner"
CONTAINER_PORT = 8080
PUBLISH_HOST = "127.0.0.1"
MODEL_DIR = "/opt/ml/model"
MODELS_DIR = "/opt/ml/models"
MAX_LINE = 16 * 1024
#: Seconds the gateway waits beyond the engine's own stop timeout before killing.
STOP_MARGIN = 5.0


def owner_id(state_dir: Path) -> str:
    """Who started a resource: this machine and state folder (two gateways never share one)."""
    key = f"{socket.gethostname()}:{state_dir.resolve()}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class DockerHandle:
    """One started container; a thread follows its output, then reports its exit code."""

    def __init__(
        self,
        api: APIClient,
        streams: APIClient,
        cid: str,
        url: str,
        on_line: LineSink,
        *,
        watch_memory: bool,
    ) -> None:
        self._api = api
        #: A client without a read timeout: a quiet container's log stream may idle for hours.
        self._streams = streams
        self._id = cid
        self._url = url
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._memory: int | None = None
        self._removed = False
        name = f"logs {cid[:12]}"
        threading.Thread(target=self._follow, args=(on_line,), name=name, daemon=True).start()
        if watch_memory:
            threading.Thread(target=self._stats, name=f"stats {cid[:12]}", daemon=True).start()

    @property
    def url(self) -> str:
        return self._url

    @property
    def pid(self) -> int | None:
        return None  # the engine's process, not one the gateway owns

    @property
    def id(self) -> str:
        return self._id

    @property
    def alive(self) -> bool:
        return not self._exited.done()

    def memory(self) -> int | None:
        """Bytes in use per the engine's stats (kept for MultiModel containers only)."""
        return self._memory if self.alive else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def stop(self, grace: float) -> int:
        """SIGTERM via the engine, which SIGKILLs after ``grace``; then remove the container."""
        try:
            await asyncio.to_thread(self._api.stop, self._id, timeout=max(int(grace), 0))
        except Exception as exc:  # gone already, or the engine is: the exit wait tells
            logger.debug("stop %s: %s", self._id[:12], exc)
        return await self._finish()

    async def kill(self) -> int:
        try:
            await asyncio.to_thread(self._api.kill, self._id)
        except Exception as exc:
            logger.debug("kill %s: %s", self._id[:12], exc)
        return await self._finish()

    async def _finish(self) -> int:
        try:
            code = await asyncio.wait_for(self.wait(), timeout=STOP_MARGIN)
        except TimeoutError:
            code = 137
        await asyncio.to_thread(self.remove)
        return code

    def remove(self) -> None:
        """Best effort: what stays behind is removed by the next ``reap_leftovers``."""
        from docker.errors import NotFound

        if self._removed:
            return
        try:
            self._api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except Exception as exc:
            logger.warning("cannot remove container %s: %s", self._id[:12], exc)
            return
        self._removed = True

    def _follow(self, on_line: LineSink) -> None:
        """Thread: feed each output line to ``on_line`` in the loop, then report the exit."""
        api = self._streams
        try:
            stream = api.logs(self._id, stream=True, follow=True, stdout=True, stderr=True)
            for line in _lines(stream):
                self._call(on_line, line)
        except Exception as exc:  # the engine went away; the exit code below still tells
            logger.debug("log stream of %s ended: %s", self._id[:12], exc)
        code = 137
        try:
            code = int(api.wait(self._id, timeout=None)["StatusCode"])
        except Exception as exc:  # already removed: the gateway stopped or killed it
            logger.debug("wait for %s: %s", self._id[:12], exc)
        self._call(self._set_exit, code)

    def _stats(self) -> None:
        with contextlib.suppress(Exception):  # no stats: memory stays unknown
            for sample in self._streams.stats(self._id, decode=True, stream=True):
                usage = (sample.get("memory_stats") or {}).get("usage")
                self._memory = int(usage) if usage else None
                if not self.alive:
                    break

    def _set_exit(self, code: int) -> None:
        if not self._exited.done():
            self._exited.set_result(code)

    def _call(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(_safely, fn, *args)


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
        #: One host port per container for the gateway's life: a restart keeps the URL.
        self._ports: dict[tuple[str, str], int] = {}

    def check(self, container: ContainerRuntime) -> None:
        if image_for(container.spec) is None:
            raise BackendError(
                f"{container.endpoint}/{container.hostname}: the docker backend runs images; "
                "give it an image (or a framework), or use the process backend for a command"
            )

    def name_of(self, container: ContainerRuntime) -> str:
        return f"tandem-{self.owner}-{container.endpoint}-{container.hostname}"

    def network_name(self, endpoint: str) -> str:
        return f"tandem-{self.owner}-{endpoint}"

    def environment(self, container: ContainerRuntime) -> dict[str, str]:
        """The spec's environment, then the contract's (which must win)."""
        env: dict[str, str] = {}
        if container.multi_model:
            env.update(multi_model_environment(container))
        env.update(container.spec.environment)
        env.update(SAGEMAKER_BIND_TO_PORT=str(CONTAINER_PORT), PYTHONUNBUFFERED="1")
        return env

    def binds(self, container: ContainerRuntime, model_dir: Path, base_dir: Path) -> list[str]:
        """Read-only model mounts: ``/opt/ml/model``, or ``/opt/ml/models`` for MultiModel."""
        if not container.multi_model:
            return [f"{model_dir}:{MODEL_DIR}:ro"]
        # The gateway's model cache; also at its own path, which ``POST /models`` names.
        models = base_dir / "models"
        models.mkdir(parents=True, exist_ok=True)
        return [f"{models}:{MODELS_DIR}:ro", f"{models}:{models}:ro"]

    async def start(
        self, container: ContainerRuntime, *, model_dir: Path, base_dir: Path, on_line: LineSink
    ) -> DockerHandle:
        self.check(container)
        key = (container.endpoint, container.hostname)
        port = self._ports.get(key) or self._ports.setdefault(key, free_port(PUBLISH_HOST))
        client = await self._connect()
        image = image_for(container.spec)
        assert image is not None
        await self._require(client, image, container)
        network = await self._network(client, container.endpoint)
        model_dir.mkdir(parents=True, exist_ok=True)
        labels = {
            OWNER: self.owner,
            "tandem.endpoint": container.endpoint,
            "tandem.container": container.hostname,
            "tandem.state": str(self._settings.state_dir.resolve()),
        }
        api = client.api
        name = self.name_of(container)

        def create() -> str:
            with contextlib.suppress(Exception):
                api.remove_container(name, force=True)  # a stopped instance of an earlier start
            host_config = api.create_host_config(
                binds=self.binds(container, model_dir, base_dir),
                port_bindings={CONTAINER_PORT: (PUBLISH_HOST, port)},
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
            return cid

        from docker.errors import DockerException
        from requests import RequestException

        try:
            cid = await asyncio.to_thread(create)
        except (DockerException, RequestException) as exc:
            raise BackendError(f"cannot start {image}: {_why(exc)}") from exc
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


def _why(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)


def _safely(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a broken sink must not stop the stream
        logger.exception("log sink failed")


def _lines(stream: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a stream of chunks; overlong lines are cut, bad bytes replaced."""
    buffer = b""
    for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        if len(buffer) > MAX_LINE:
            lines.append(buffer[:MAX_LINE])
            buffer = b""
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
    if buffer:
        yield buffer.rstrip(b"\r").decode("utf-8", errors="replace")
