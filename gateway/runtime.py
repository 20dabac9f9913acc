"""Live state of the endpoints the gateway serves.

The supervisor writes it (state, restarts, URL); the HTTP side reads it (routing, ``/ping``,
``/endpoints``). Keeping it in plain objects lets both sides be tested without the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.spec import ContainerSpec, EndpointSpec, Execution, Mode

if TYPE_CHECKING:
    from gateway.lifecycle.backends.base import ContainerHandle
    from gateway.models.manager import ModelManager
    from gateway.upstream import Upstream


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
    #: The pooled client for ``url``; created in the app's lifespan, replaced when ``url`` changes.
    upstream: Upstream | None = None
    #: Folder of the spec file that declared it: a ``command`` runs there.
    source: Path | None = None
    #: The running instance (set by the supervisor): its process tree's memory is measured.
    handle: ContainerHandle | None = None
    #: Bumped each time a (re)start becomes healthy: a restarted container has lost its models.
    generation: int = 0
    #: Called after a restart made the container healthy again (the model manager re-pins).
    on_ready: list[Callable[[], None]] = field(default_factory=list)
    #: MultiModel only: the effective memory and disk cache limits in bytes (see gateway.models).
    memory_limit: int | None = None
    disk_cache_limit: int | None = None
    #: MultiModel only: the manager that loads, caches and evicts its models.
    models: ModelManager | None = None

    @property
    def healthy(self) -> bool:
        return self.state is ContainerState.HEALTHY

    @property
    def multi_model(self) -> bool:
        return self.spec.mode is Mode.MULTI_MODEL


@dataclass(eq=False)
class EndpointRuntime:
    """One endpoint: its spec and its containers, in spec order."""

    spec: EndpointSpec
    containers: list[ContainerRuntime] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: EndpointSpec) -> EndpointRuntime:
        return cls(
            spec=spec,
            containers=[
                ContainerRuntime(
                    endpoint=spec.name, hostname=hostname, spec=container, source=spec.source
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
