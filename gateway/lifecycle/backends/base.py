"""What the supervisor needs from a backend: start a container, then wait for, stop or kill it.

The supervisor stays backend-agnostic: a backend turns a ``ContainerRuntime`` (plus the host folders
prepared for it) into a running container reachable at a URL, and streams its output line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gateway.runtime import ContainerHandle, ContainerRuntime
from pipelines.errors import TandemError

__all__ = ["CODE_FOLDER", "SUBMIT_ENV", "Backend", "BackendError", "ContainerHandle", "LineSink"]

#: Receives each line a container writes to stdout or stderr, without the newline.
LineSink = Callable[[str], None]
#: SageMaker's variable for the user's code apart from the model (the SDK's ``sourcedir.tar.gz``).
SUBMIT_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
#: Where the supervisor puts that code, under a container's base dir; the backend points the
#: container's ``SAGEMAKER_SUBMIT_DIRECTORY`` at it (a remote URL is the gateway's to fetch).
CODE_FOLDER = "code"


def submitted_code(container: ContainerRuntime) -> str | None:
    """The container's ``SAGEMAKER_SUBMIT_DIRECTORY``; a relative path is its spec's folder's."""
    url = container.spec.environment.get(SUBMIT_ENV, "").strip()
    if not url:
        return None
    if "://" not in url and container.source is not None and not Path(url).is_absolute():
        return str(container.source / url)
    return url


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
