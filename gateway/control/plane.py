"""SageMaker's control plane as a transport-agnostic core: ``call(operation, params) -> dict``.

One call: the operation is looked up, its input checked against botocore's model of SageMaker
(``shapes``), its handler does its checks and one transaction, and only then are the hooks to the
running side called: ``EndpointRunner.kick`` after an endpoint's desired state changed,
``JobRunner.start``/``stop`` for transform jobs. A call that raises changed nothing. The running
side reads what to run with ``plan``/``job_plan`` and reports back through the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gateway.control import components, endpoints, models, tags, transform
from gateway.control.context import DEFAULT_ACCOUNT, DEFAULT_REGION, ControlContext, Result
from gateway.control.shapes import operation_names, service_model, validate
from gateway.control.translate import containers_of, default_model_roots, to_spec
from gateway.errors import UnknownOperation
from gateway.state import ComponentRecord, EndpointRecord, JobRecord, StateError, StateStore
from pipelines.spec import EndpointSpec

log = logging.getLogger("tandem.control")

Handler = Callable[[ControlContext, dict[str, Any]], Result]

OPERATIONS: dict[str, Handler] = {
    "CreateModel": models.create_model,
    "DescribeModel": models.describe_model,
    "ListModels": models.list_models,
    "DeleteModel": models.delete_model,
    "CreateEndpointConfig": models.create_endpoint_config,
    "DescribeEndpointConfig": models.describe_endpoint_config,
    "ListEndpointConfigs": models.list_endpoint_configs,
    "DeleteEndpointConfig": models.delete_endpoint_config,
    "CreateEndpoint": endpoints.create_endpoint,
    "DescribeEndpoint": endpoints.describe_endpoint,
    "ListEndpoints": endpoints.list_endpoints,
    "UpdateEndpoint": endpoints.update_endpoint,
    "UpdateEndpointWeightsAndCapacities": endpoints.update_endpoint_weights_and_capacities,
    "ListTags": tags.list_tags,
    "DeleteEndpoint": endpoints.delete_endpoint,
    "CreateTransformJob": transform.create_transform_job,
    "DescribeTransformJob": transform.describe_transform_job,
    "ListTransformJobs": transform.list_transform_jobs,
    "StopTransformJob": transform.stop_transform_job,
    "CreateInferenceComponent": components.create_inference_component,
    "DescribeInferenceComponent": components.describe_inference_component,
    "ListInferenceComponents": components.list_inference_components,
    "UpdateInferenceComponent": components.update_inference_component,
    "UpdateInferenceComponentRuntimeConfig": components.update_inference_component_runtime_config,
    "DeleteInferenceComponent": components.delete_inference_component,
}
#: Checks that run before the generic ones, where SageMaker answers with another code.
PRECHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"CreateModel": models.precheck_model}


class EndpointRunner(Protocol):
    """Makes the running endpoints match the state (implemented by the serving side)."""

    def kick(self, endpoint: str) -> None:
        """``endpoint``'s desired state changed (``Creating``, ``Updating`` or ``Deleting``).

        Called after the change committed, on the thread that made the call (the event loop's
        for ``acall``); it should only schedule the work and return.
        """


class ComponentRunner(Protocol):
    """Places and runs inference components' copies (implemented by the serving side)."""

    def kick(self, component: str) -> None:
        """``component``'s desired state changed; schedule the work and return."""

    def view(self, component: str) -> Mapping[str, Any] | None:
        """What runs of ``component``: ``current`` copies, ``copies`` (where each runs, its
        reservation), ``pending`` (why copies wait); None when nothing runs."""


class JobRunner(Protocol):
    """Runs transform jobs (implemented by the batch side)."""

    def start(self, job: str) -> None: ...

    def stop(self, job: str) -> None: ...


@dataclass(frozen=True)
class EndpointPlan:
    """What an endpoint should run: its config's spec, and while ``Updating`` the new one."""

    endpoint: EndpointRecord
    spec: EndpointSpec
    instance_count: int
    pending_spec: EndpointSpec | None = None
    pending_instance_count: int | None = None


@dataclass(frozen=True)
class JobPlan:
    """What a transform job runs: its model's containers (the job's ``Environment`` added to
    each) as a spec named after the job, and the batch runner's settings."""

    job: JobRecord
    spec: EndpointSpec
    options: dict[str, Any] = field(default_factory=dict)


class ControlPlane:
    def __init__(
        self,
        store: StateStore,
        *,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        model_roots: Sequence[str | Path] | None = None,
        reconciler: EndpointRunner | None = None,
        jobs: JobRunner | None = None,
        check_job: Callable[[Mapping[str, Any]], None] | None = None,
        observe: Callable[[str], Mapping[str, tuple[float, int]] | None] | None = None,
        budget: int | None = None,
        alarms: Callable[[list[str]], list[dict[str, Any]]] | None = None,
        instance_capacity: tuple[float, int] | None = None,
        components: ComponentRunner | None = None,
    ) -> None:
        roots = default_model_roots() if model_roots is None else model_roots
        self.store = store
        self.context = ControlContext(
            store,
            region,
            account,
            tuple(str(r) for r in roots),
            forbidden=(str(store.path.parent.resolve()),),
            check_job=check_job,
            observe=observe,
            budget=budget,
            alarms=alarms,
            instance_capacity=instance_capacity,
            observe_component=self._view,
        )
        #: The hooks; may be set after construction (the serving side is built later).
        self.reconciler = reconciler
        self.jobs = jobs
        self.components = components

    def spec_for(self, endpoint: str, config: str) -> EndpointSpec:
        """The spec that runs ``config`` under the name ``endpoint``: what the reconciler starts
        (the endpoint's own copy of its config and models, which outlive their deletion)."""
        return endpoints.running_spec(self.context, endpoint, config)

    def warm(self) -> None:
        """Load botocore's model of SageMaker now (a few hundred ms) rather than on first call."""
        service_model()

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation; raise a ``ControlError`` (nothing changed) or return its answer."""
        result = self.execute(operation, params)
        self.notify(result)
        return result.body

    async def acall(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``call`` for the event loop: the database work in a thread, the hooks on the loop."""
        result = await asyncio.to_thread(self.execute, operation, params)
        self.notify(result)
        return result.body

    def execute(self, operation: str, params: Mapping[str, Any]) -> Result:
        """Checks and the write, without the hooks."""
        handler = OPERATIONS.get(operation)
        if handler is None:
            if operation in operation_names():
                raise UnknownOperation(
                    f"SageMaker.{operation} is not implemented by Tandem; it implements "
                    f"{', '.join(sorted(OPERATIONS))}."
                )
            raise UnknownOperation(f"Unknown operation SageMaker.{operation}.")
        raw = dict(params)
        if operation in PRECHECKS:
            PRECHECKS[operation](raw)
        cleaned = validate(operation, raw)
        try:
            return handler(self.context, cleaned)
        except StateError as exc:
            raise self.context.error(exc) from exc

    def notify(self, result: Result) -> None:
        """Call the hooks a committed change asked for; a failing hook is logged, not raised
        (the state is written, and a restart's reconciliation picks it up)."""
        calls: list[tuple[str, Callable[[str], None] | None, list[str]]] = [
            ("kick", self.reconciler.kick if self.reconciler else None, result.kick),
            ("start", self.jobs.start if self.jobs else None, result.start_jobs),
            ("stop", self.jobs.stop if self.jobs else None, result.stop_jobs),
            (
                "kick component",
                self.components.kick if self.components else None,
                result.kick_components,
            ),
        ]
        for what, hook, names in calls:
            for name in names:
                if hook is None:
                    log.warning("no runner attached: %s %s waits", what, name)
                    continue
                try:
                    hook(name)
                except Exception:
                    log.exception("the %s hook failed for %s", what, name)

    def copy_spec(self, component: ComponentRecord, *, pending: bool = False) -> EndpointSpec:
        """What one copy of ``component`` runs (its new specification's with ``pending``), as a
        one-variant spec named after its endpoint and variant (whose RoutingConfig it takes)."""
        model = component.pending_model if pending and component.pending_model else component.model
        endpoint = self.store.get_endpoint(component.endpoint)
        config = endpoint.deployed.request if endpoint and endpoint.deployed else {}
        variant = next(
            (
                v
                for v in config.get("ProductionVariants") or []
                if v["VariantName"] == component.variant
            ),
            {"VariantName": component.variant},
        )
        return to_spec(component.endpoint, model, {"ProductionVariants": [variant]})

    def _view(self, component: str) -> Mapping[str, Any] | None:
        return self.components.view(component) if self.components is not None else None

    def plan(self, endpoint: str) -> EndpointPlan | None:
        """What ``endpoint`` should run now; ``None`` once it is gone."""
        record = self.store.get_endpoint(endpoint)
        if record is None or record.deployed is None:
            return None
        pending_spec, pending_count = None, None
        if record.pending_deployed is not None:
            pending_spec = endpoints.deployed_spec(record.name, record.pending_deployed)
            pending_count = pending_spec.production_variants[0].instance_count
        spec = endpoints.deployed_spec(record.name, record.deployed)
        return EndpointPlan(
            endpoint=record,
            spec=spec,
            instance_count=spec.production_variants[0].instance_count,
            pending_spec=pending_spec,
            pending_instance_count=pending_count,
        )

    def job_plan(self, job: str) -> JobPlan | None:
        """What transform job ``job`` runs; ``None`` if there is no such job."""
        record = self.store.get_job(job)
        if record is None:
            return None
        model = models.model_record(self.context, record.model).request
        extra = record.request.get("Environment", {})
        definitions = containers_of(model)  # copies: the stored request is left alone
        for _, container in definitions:
            container["Environment"] = {**container.get("Environment", {}), **extra}
        spec = to_spec(record.name, _with_containers(model, definitions))
        return JobPlan(record, spec, transform.job_options(record.request))


def _with_containers(
    model: dict[str, Any], containers: list[tuple[tuple[str | int, ...], dict[str, Any]]]
) -> dict[str, Any]:
    """``model`` with its container definitions replaced by ``containers`` (same paths)."""
    out = dict(model)
    if "Containers" in out:
        out["Containers"] = [c for _, c in containers]
    elif containers:
        out["PrimaryContainer"] = containers[0][1]
    return out
