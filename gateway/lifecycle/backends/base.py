"""What the supervisor needs from a backend: start a container, then wait for, stop or kill it.

The supervisor stays backend-agnostic: a backend turns a ``ContainerRuntime`` (plus the host folders
prepared for it) into a running container reachable at a URL, and streams its output line by line.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gateway.container_env import CODE_FOLDER, SUBMIT_ENV, submitted_code
from gateway.live import ContainerHandle, ContainerRuntime
from pipelines.errors import TandemError

__all__ = [
    "CODE_FOLDER",
    "SUBMIT_ENV",
    "Backend",
    "BackendError",
    "ContainerHandle",
    "LineSink",
    "submitted_code",
]

#: Receives each line a container writes to stdout or stderr, without the newline.
LineSink = Callable[[str], None]


class BackendError(TandemError):
    """A backend cannot run a container (or is not available); the message says why."""


class Backend(Protocol):
    name: str

    def check(self, container: ContainerRuntime) -> None:
        """Raise ``BackendError`` when this backend cannot run ``container`` (before any start)."""
        ...

    async def start(
        self, container: ContainerRuntime, *, model_dir: Path, base_dir: Path, on_line: LineSink
    ) -> ContainerHandle:
        """Start ``container``: its model is in ``model_dir``, its scratch space ``base_dir``."""
        ...

    async def reap_leftovers(self) -> int:
        """Kill what an earlier, uncleanly ended gateway left running; how many processes."""
        ...


def can_listen(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (with SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
