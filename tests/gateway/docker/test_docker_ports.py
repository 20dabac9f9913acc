"""Which host port a docker-backend container is published on, against a real engine.

The engine picks the port and binds it in one step: a port the gateway picked itself could be taken
by any other process (a client socket's ephemeral port, another test's server) before the engine
bound it, and the start failed with "address already in use".
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from gateway.lifecycle.backends.docker import DockerBackend, DockerHandle
from gateway.lifecycle.health import ping
from gateway.live import ContainerRuntime, Instance
from gateway.settings import GatewaySettings
from pipelines.spec import EndpointSpec

if TYPE_CHECKING:
    from docker import DockerClient

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def port_of(handle: DockerHandle) -> int:
    port = urlsplit(handle.url).port
    assert port is not None
    return port


async def healthy(handle: DockerHandle, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await ping(handle.url, timeout=2.0):
        assert handle.alive, "the container exited"
        assert time.monotonic() < deadline, f"{handle.url} did not answer /ping in {timeout}s"
        await asyncio.sleep(0.1)


async def restarts(backend: DockerBackend, container: ContainerRuntime, tmp: Path) -> list[int]:
    """Start the container three times: the second time, its old port is taken."""

    async def start() -> DockerHandle:
        handle = await backend.start(
            container, model_dir=tmp / "model", base_dir=tmp / "base", on_line=lambda _: None
        )
        await healthy(handle)
        return handle

    ports = []
    try:
        first = await start()
        ports.append(port_of(first))
        await first.stop(3)
        with socket.socket() as squatter:  # another server takes the port meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", ports[0]))
            squatter.listen()
            second = await start()
            ports.append(port_of(second))
            await second.stop(3)
        third = await start()  # the port of the last start is free again: it is kept
        ports.append(port_of(third))
        await third.stop(3)
    finally:
        await backend.reap_leftovers()
    return ports


def test_a_restart_keeps_its_port_unless_it_was_taken_meanwhile(
    engine: DockerClient, custom_image: str, tmp_path: Path
) -> None:
    backend = DockerBackend(GatewaySettings(state_dir=tmp_path / "state"))
    spec = EndpointSpec.model_validate({"name": "ports", "containers": [{"image": custom_image}]})
    (container,) = Instance.from_spec(spec).containers
    first, second, third = asyncio.run(restarts(backend, container, tmp_path))
    assert second != first
    assert third == second
