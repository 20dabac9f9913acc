"""The external backend: containers already run elsewhere (compose, Kubernetes); only check them.

Each container is expected at ``settings.external_url`` with ``{endpoint}``, ``{hostname}`` and
``{port}`` (its ``SAGEMAKER_BIND_TO_PORT``, default 8080) filled in (default
``http://{endpoint}-{hostname}:8080``: the service names ``tandem compose`` writes; ``tandem k8s``
uses ``http://127.0.0.1:{port}``, sidecars in one pod). Starting one just names its URL; the
supervisor then waits for its ``/ping`` as usual, and a "restart" after failed health checks
waits for whatever runs it to bring it back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.lifecycle.backends.base import BackendError, LineSink
from gateway.live import ContainerRuntime
from gateway.settings import GatewaySettings


class ExternalHandle:
    """A container someone else runs: alive until the gateway lets go of it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._released = asyncio.Event()

    @property
    def url(self) -> str:
        return self._url

    @property
    def pid(self) -> int | None:
        return None

    @property
    def alive(self) -> bool:
        return not self._released.is_set()

    def memory(self) -> int | None:
        return None

    async def wait(self) -> int:
        await self._released.wait()
        return 0

    async def stop(self, grace: float) -> int:
        self._released.set()
        return 0

    async def kill(self) -> int:
        self._released.set()
        return 0


class ExternalBackend:
    name = "external"

    def __init__(self, settings: GatewaySettings) -> None:
        self._template = settings.external_url

    def url(self, container: ContainerRuntime) -> str:
        try:
            port = container.spec.environment.get("SAGEMAKER_BIND_TO_PORT", "8080")
            url = self._template.format(
                endpoint=container.endpoint, hostname=container.hostname, port=port
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise BackendError(
                f"external_url {self._template!r} is not a valid template "
                f"(it may use {{endpoint}}, {{hostname}} and {{port}}): {exc}"
            ) from exc
        return url.rstrip("/")

    def check(self, container: ContainerRuntime) -> None:
        self.url(container)

    async def start(
        self, container: ContainerRuntime, *, model_dir: Path, base_dir: Path, on_line: LineSink
    ) -> ExternalHandle:
        return ExternalHandle(self.url(container))

    async def reap_leftovers(self) -> int:
        return 0
