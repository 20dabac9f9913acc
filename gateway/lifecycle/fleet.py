"""What the reconciler runs per endpoint (``Deployment``: one config's containers) and where it
reads what to run (``Specs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.lifecycle.supervisor import Supervisor
from gateway.live import Instance, LiveEndpoint
from pipelines.spec import EndpointSpec


class Specs(Protocol):
    """Where the reconciler reads what to run (the control plane: ``ControlPlane.spec_for``)."""

    def spec_for(self, endpoint: str, config: str) -> EndpointSpec:
        """The spec that runs ``config`` under the name ``endpoint``."""
        ...


@dataclass(eq=False)
class Deployment:
    """One endpoint's containers under one config: what an update replaces whole.

    Each instance has its own supervisor, so that a variant's instance count can change while
    the others serve.
    """

    runtime: LiveEndpoint
    config: str
    supervisors: dict[Instance, Supervisor] = field(default_factory=dict)
