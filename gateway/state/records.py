"""What the state database holds, as plain immutable records, and the errors its writes raise.

Each record keeps the call that made it (``request``, the JSON the client sent, validated) beside
the columns that lookups, filters and sorting need; the control plane answers ``Describe*`` from
both. Names keep the case they were given; their lower-cased form is the key, because SageMaker
names are unique regardless of case (the ARN is lower-cased).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pipelines.errors import TandemError

T = TypeVar("T")


class EndpointStatus(StrEnum):
    """The statuses Tandem uses, out of SageMaker's ``EndpointStatus`` enum."""

    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"


class ComponentStatus(StrEnum):
    """SageMaker's ``InferenceComponentStatus``."""

    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"


class JobStatus(StrEnum):
    """SageMaker's ``TransformJobStatus``."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


#: A job in one of these is over: it has an end time and cannot be stopped.
JOB_FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED})


@dataclass(frozen=True, slots=True)
class ModelRecord:
    name: str
    arn: str
    created: float
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    name: str
    arn: str
    created: float
    request: dict[str, Any]
    #: Variant name -> model name, in the order of ``ProductionVariants``.
    models: dict[str, str]


@dataclass(frozen=True, slots=True)
class Deployed:
    """What an endpoint was deployed with, copied when it was created or updated: its config's
    request and each of that config's models' requests. As on SageMaker, the endpoint runs
    this copy, so its config and models may be deleted (or made again otherwise) meanwhile."""

    #: The config's name, as created.
    config: str
    request: dict[str, Any]
    #: Model name -> its ``CreateModel`` request.
    models: dict[str, dict[str, Any]]

    def model(self, name: str) -> dict[str, Any] | None:
        """The request of the model a variant names (names are unique regardless of case, and
        a variant may spell one otherwise than it was created)."""
        found = self.models.get(name)
        if found is None:
            found = next((m for n, m in self.models.items() if n.lower() == name.lower()), None)
        return found


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    name: str
    arn: str
    #: The config the endpoint serves (or, while ``Creating``, is being created with).
    config: str
    #: While ``Updating``: the config the update moves to.
    pending_config: str | None
    status: EndpointStatus
    failure_reason: str | None
    created: float
    modified: float
    #: When the running update began (``Updating`` only).
    update_started: float | None
    request: dict[str, Any]
    #: UpdateEndpointWeightsAndCapacities: variant -> {"weight": w, "count": n} over the config.
    desired: dict[str, dict[str, float]] = field(default_factory=dict)
    #: What it runs (the copy of ``config``), and while ``Updating`` what it moves to.
    deployed: Deployed | None = None
    pending_deployed: Deployed | None = None
    #: The DeploymentConfig last given (``LastDeploymentConfig``), and a running update's steps.
    deployment_config: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    name: str
    arn: str
    model: str
    status: JobStatus
    failure_reason: str | None
    created: float
    modified: float
    #: When the runner began, and when the job ended (Completed, Failed or Stopped).
    started: float | None
    ended: float | None
    request: dict[str, Any]
    #: What the runner last reported (records, bytes, failed files ...); ``{}`` before that.
    progress: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ComponentRecord:
    """An inference component: what one copy runs (``model``) and how many copies to run."""

    name: str
    arn: str
    endpoint: str
    variant: str
    status: ComponentStatus
    failure_reason: str | None
    created: float
    modified: float
    #: The create (or last update) request: ``Specification``, ``RuntimeConfig``, ``Tags``.
    request: dict[str, Any]
    #: The CreateModel-shaped request one copy runs (its containers), taken when it was made.
    model: dict[str, Any]
    #: ``DesiredCopyCount``.
    copies: int
    #: While ``Updating`` to a new specification: its request and model.
    pending_request: dict[str, Any] | None = None
    pending_model: dict[str, Any] | None = None

    @property
    def specification(self) -> dict[str, Any]:
        return dict(self.request.get("Specification") or {})


class SortBy(StrEnum):
    NAME = "Name"
    CREATION_TIME = "CreationTime"
    STATUS = "Status"


@dataclass(frozen=True, slots=True)
class Query:
    """A ``List*`` call's filters, order and page: every field optional, as in SageMaker."""

    name_contains: str | None = None
    created_before: float | None = None
    created_after: float | None = None
    modified_before: float | None = None
    modified_after: float | None = None
    status: str | None = None
    sort_by: SortBy = SortBy.CREATION_TIME
    descending: bool = True
    limit: int = 10
    #: The ``NextToken`` of the page before (opaque; made by the store).
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    #: ``None`` on the last page.
    next_token: str | None = None


class StateError(TandemError):
    """A write the database refused; the control plane turns each kind into a SageMaker error."""


class StateCorrupt(StateError):
    """The database cannot be used: newer than this code, or not a Tandem state database."""


class AlreadyExists(StateError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists")
        self.kind = kind
        self.name = name


class NotFound(StateError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} does not exist")
        self.kind = kind
        self.name = name


class InUse(StateError):
    """A model or config that an endpoint (or a running job) still needs."""

    def __init__(self, kind: str, name: str, users: list[str]) -> None:
        super().__init__(f"{kind} {name!r} is used by {', '.join(users)}")
        self.kind = kind
        self.name = name
        #: Who uses it: ``endpoint "x"`` or ``transform job "y"``.
        self.users = users


class WrongState(StateError):
    """The change needs another status than the resource has (checked in the same transaction)."""

    def __init__(self, kind: str, name: str, status: str) -> None:
        super().__init__(f"{kind} {name!r} is {status}")
        self.kind = kind
        self.name = name
        self.status = status


class BadToken(StateError):
    """A ``NextToken`` this store did not make, or made for another order."""
