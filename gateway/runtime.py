"""Live state of the endpoints the gateway serves.

Only the supervisor writes it (state, restarts, URL, the running handle); the edge and the
dispatcher read it (routing, ``/ping``, ``/endpoints``). What the dispatcher adds per container
(its pooled client, its model manager) the dispatcher keeps itself. Keeping the state in plain
objects lets both sides be tested without the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from gateway.models.limits import Limits, fair_limits
from pipelines.spec import ContainerSpec, EndpointSpec, Execution, Mode


class ContainerHandle(Protocol):
    """One started instance of a container, as a backend made it; a restart makes a new one."""

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


class ContainerState(StrEnum):
    STARTING = "Starting"
    HEALTHY = "InService"
    RESTARTING = "Restarting"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(eq=False)
class ContainerRuntime:
    """One running sidecar as the gateway sees it."""

    endpoint: str
    hostname: str
    spec: ContainerSpec
    #: Base URL of the container, e.g. ``http://127.0.0.1:49152``; set by the backend at start.
    url: str = ""
    state: ContainerState = ContainerState.STARTING
    restarts: int = 0
    #: Folder of the spec file that declared it: a ``command`` runs there.
    source: Path | None = None
    #: The running instance (set by the supervisor): its process tree's memory is measured.
    handle: ContainerHandle | None = None
    #: Bumped each time a (re)start becomes healthy: a restarted container has lost its models.
    generation: int = 0
    #: Called after a restart made the container healthy again (the model manager re-pins).
    on_ready: list[Callable[[], None]] = field(default_factory=list)
    #: MultiModel only: the effective memory and disk cache limits, fixed when it is built.
    limits: Limits | None = None

    @property
    def healthy(self) -> bool:
        return self.state is ContainerState.HEALTHY

    @property
    def multi_model(self) -> bool:
        return self.spec.mode is Mode.MULTI_MODEL

    @property
    def memory_limit(self) -> int | None:
        return self.limits.memory if self.limits is not None else None


@dataclass(eq=False)
class EndpointRuntime:
    """One endpoint: its spec and its containers, in spec order."""

    spec: EndpointSpec
    containers: list[ContainerRuntime] = field(default_factory=list)

    @classmethod
    def from_spec(
        cls, spec: EndpointSpec, limits: dict[str, Limits] | None = None
    ) -> EndpointRuntime:
        """One endpoint; ``limits`` gives each MultiModel container's (see ``build``)."""
        limits = limits or {}
        return cls(
            spec=spec,
            containers=[
                ContainerRuntime(
                    endpoint=spec.name,
                    hostname=hostname,
                    spec=container,
                    source=spec.source,
                    limits=limits.get(hostname),
                )
                for hostname, container in zip(spec.hostnames, spec.containers, strict=True)
            ],
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variant(self) -> str:
        return self.spec.variant

    @property
    def direct(self) -> bool:
        return self.spec.execution is Execution.DIRECT

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.containers)

    def container(self, hostname: str) -> ContainerRuntime | None:
        for c in self.containers:
            if c.hostname == hostname:
                return c
        return None


def build(specs: list[EndpointSpec], state_dir: Path) -> list[EndpointRuntime]:
    """The runtime of every endpoint, with each MultiModel container's limits resolved once."""
    limits = fair_limits(specs, state_dir)
    return [EndpointRuntime.from_spec(spec, limits.get(spec.name)) for spec in specs]
