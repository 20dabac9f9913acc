"""Live state of the endpoints the gateway serves.

Only the supervisor writes it (state, restarts, URL, the running handle); the edge and the
dispatcher read it (routing, ``/ping``, ``/endpoints``). What the dispatcher adds per container
(its pooled client, its model manager) the dispatcher keeps itself. Keeping the state in plain
objects lets both sides be tested without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
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
    #: What names its folder, process and image instances: the endpoint's name for its first
    #: deployment, ``name.N`` for the N-th (an update runs beside the one it replaces).
    deployment: str = ""
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

    def __post_init__(self) -> None:
        self.deployment = self.deployment or self.endpoint

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
    #: Requests being answered now: an endpoint replaced or deleted is stopped once it is 0.
    inflight: int = 0

    @classmethod
    def from_spec(
        cls,
        spec: EndpointSpec,
        limits: dict[str, Limits] | None = None,
        *,
        deployment: str = "",
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
                    deployment=deployment,
                    source=spec.source,
                    limits=limits.get(hostname),
                )
                for hostname, container in zip(spec.hostnames, spec.containers, strict=True)
            ],
        )

    @cached_property
    def variant_header(self) -> bytes:
        return self.spec.variant.encode("latin-1")

    @property
    def deployment(self) -> str:
        return self.containers[0].deployment if self.containers else self.name

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


def build(
    specs: list[EndpointSpec], state_dir: Path, *, deployment: str = ""
) -> list[EndpointRuntime]:
    """The runtime of every endpoint, with each MultiModel container's limits resolved once."""
    limits = fair_limits(specs, state_dir)
    return [
        EndpointRuntime.from_spec(spec, limits.get(spec.name), deployment=deployment)
        for spec in specs
    ]


class EndpointTable:
    """The endpoints that answer requests, by name: a snapshot replaced whole, never edited.

    The hot path reads ``get`` with no lock; the control side builds a new mapping and swaps
    the one reference, so a request sees the old table or the new one, never half of a change.
    """

    def __init__(self, endpoints: Iterable[EndpointRuntime] = ()) -> None:
        self._current: Mapping[str, EndpointRuntime] = MappingProxyType(
            {e.name: e for e in endpoints}
        )

    def get(self, name: str) -> EndpointRuntime | None:
        return self._current.get(name)

    def __iter__(self) -> Iterator[EndpointRuntime]:
        return iter(list(self._current.values()))

    def __len__(self) -> int:
        return len(self._current)

    def put(self, endpoint: EndpointRuntime) -> EndpointRuntime | None:
        """Serve ``endpoint`` under its name from now on; the one it replaced, if any."""
        new = dict(self._current)
        old = new.get(endpoint.name)
        new[endpoint.name] = endpoint
        self._current = MappingProxyType(new)
        return old

    def remove(self, name: str) -> EndpointRuntime | None:
        new = dict(self._current)
        old = new.pop(name, None)
        self._current = MappingProxyType(new)
        return old
