"""Live state of the endpoints the gateway serves.

The supervisor writes it (state, restarts, URL); the HTTP side reads it (routing, ``/ping``,
``/endpoints``). Keeping it in plain objects lets both sides be tested without the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.spec import ContainerSpec, EndpointSpec, Execution

if TYPE_CHECKING:
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

    @property
    def healthy(self) -> bool:
        return self.state is ContainerState.HEALTHY


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
