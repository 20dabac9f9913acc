"""What every operation handler gets (the store, ARNs, the model roots) and what it returns.

A handler does its checks and its one write, and returns the answer plus the hooks to call once
that write has committed (which endpoints to kick, which jobs to start or stop); the plane calls
them, so a hook never runs for a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import (
    ControlError,
    ResourceInUse,
    ResourceNotFound,
    ValidationException,
)
from gateway.state import (
    AlreadyExists,
    BadToken,
    InUse,
    NotFound,
    Query,
    SortBy,
    StateError,
    StateStore,
)

#: The account in ARNs: a self-hosted gateway has none, so twelve zeros (as local AWS tools use).
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
#: SageMaker's page size when ``MaxResults`` is not given.
DEFAULT_PAGE = 10
#: The ARN resource type of each kind the store names.
ARN_KINDS = {
    "model": "model",
    "endpoint configuration": "endpoint-config",
    "endpoint": "endpoint",
    "transform job": "transform-job",
    "inference component": "inference-component",
}


@dataclass
class Result:
    """An operation's answer, and the hooks it asks for once its write has committed."""

    body: dict[str, Any] = field(default_factory=dict)
    kick: list[str] = field(default_factory=list)
    start_jobs: list[str] = field(default_factory=list)
    stop_jobs: list[str] = field(default_factory=list)
    #: Inference components whose desired state changed (``ComponentRunner.kick``).
    kick_components: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ControlContext:
    store: StateStore
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    #: Folders and URL prefixes model data and job data may come from (``TANDEM_MODEL_ROOTS``).
    model_roots: tuple[str, ...] = ()
    #: Folders no location may name, whatever the roots: the state folder.
    forbidden: tuple[str, ...] = ()
    #: Checks a transform job's batch options before it is created (raises ``TandemError``).
    check_job: Callable[[Mapping[str, Any]], None] | None = None
    #: What runs: endpoint -> {variant: (current weight, instances)} (None: nothing runs).
    observe: Callable[[str], Mapping[str, tuple[float, int]] | None] | None = None
    #: The host budget: containers all endpoints together may run (None: no limit).
    budget: int | None = None
    #: CloudWatch alarms by name (those that exist), for DeploymentConfig's auto-rollback.
    alarms: Callable[[list[str]], list[dict[str, Any]]] | None = None
    #: What one instance of an endpoint for inference components offers copies: (CPU cores,
    #: memory in MiB); None: no limit.
    instance_capacity: tuple[float, int] | None = None
    #: What runs of an inference component (``ComponentRunner.view``); None: nothing runs.
    observe_component: Callable[[str], Mapping[str, Any] | None] | None = None

    def arn(self, kind: str, name: str) -> str:
        """``arn:aws:sagemaker:<region>:<account>:<kind>/<name lower-cased>``."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def error(self, exc: StateError) -> ControlError:
        """The SageMaker error for a write the store refused."""
        if isinstance(exc, NotFound):
            if exc.kind == "transform job":
                return ResourceNotFound(f'Could not find transform job "{exc.name}".')
            return ValidationException(f'Could not find {exc.kind} "{exc.name}".')
        if isinstance(exc, AlreadyExists):
            arn = self.arn(ARN_KINDS[exc.kind], exc.name)
            if exc.kind == "transform job":
                return ResourceInUse(
                    "Job name must be unique within an AWS account and region, and a job with "
                    f"this name already exists ({arn})"
                )
            return ValidationException(f'Cannot create already existing {exc.kind} "{arn}".')
        if isinstance(exc, InUse):
            users = ", ".join(exc.users)
            return ResourceInUse(
                f'Cannot delete {exc.kind} "{exc.name}": it is in use by {users}. Delete or '
                "update those first."
            )
        if isinstance(exc, BadToken):
            return ValidationException(f"Invalid value at 'nextToken': {exc}")
        return ValidationException(str(exc))


def query(params: Mapping[str, Any], *, modified: bool = False, status: bool = False) -> Query:
    """A ``List*`` call's parameters as a store ``Query`` (already validated by the shapes)."""
    sort = params.get("SortBy", "CreationTime")
    return Query(
        name_contains=params.get("NameContains"),
        created_before=params.get("CreationTimeBefore"),
        created_after=params.get("CreationTimeAfter"),
        modified_before=params.get("LastModifiedTimeBefore") if modified else None,
        modified_after=params.get("LastModifiedTimeAfter") if modified else None,
        status=params.get("StatusEquals") if status else None,
        sort_by=SortBy(sort),
        descending=params.get("SortOrder", "Descending") == "Descending",
        limit=int(params.get("MaxResults", DEFAULT_PAGE)),
        token=params.get("NextToken") or None,
    )


def page(key: str, items: list[dict[str, Any]], token: str | None) -> Result:
    body: dict[str, Any] = {key: items}
    if token is not None:
        body["NextToken"] = token
    return Result(body)


def unsupported(params: Mapping[str, Any], members: Mapping[str, str]) -> None:
    """Refuse members that would change what runs but that Tandem does not do yet."""
    for name, why in members.items():
        if params.get(name) is not None:
            raise ValidationException(
                f"{name[:1].lower() + name[1:]}: {name} is not supported by Tandem yet ({why})."
            )
