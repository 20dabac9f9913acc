"""What the supervisor needs from a backend: start a container, then wait for, stop or kill it.

The supervisor stays backend-agnostic: a backend turns a ``ContainerRuntime`` (plus the host folders
prepared for it) into a running container reachable at a URL, and streams its output line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gateway.runtime import ContainerRuntime

#: Receives each line a container writes to stdout or stderr, without the newline.
LineSink = Callable[[str], None]


class BackendError(Exception):
    """A backend cannot run a container (or is not available); the message says why."""


class ContainerHandle(Protocol):
    """One started instance of a container; a restart makes a new handle."""

    @property
    def url(self) -> str:
        """Base URL the container answers on; stable across restarts of the same container."""
        ...

    @property
    def pid(self) -> int | None:
        """The host process id, where there is one (for logs and orphan checks)."""
        ...

    @property
    def alive(self) -> bool: ...

    def memory(self) -> int | None:
        """Resident bytes the container uses now (its whole process tree); None if unknown."""
        ...

    async def wait(self) -> int:
        """Wait for the container to end; its exit code (128+N for death by signal N)."""
        ...

    async def stop(self, grace: float) -> int:
        """SIGTERM the container and everything it started, SIGKILL after ``grace`` seconds."""
        ...

    async def kill(self) -> int:
        """SIGKILL the container and everything it started, now."""
        ...


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
