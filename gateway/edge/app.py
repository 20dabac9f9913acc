"""The gateway's HTTP edge: SageMaker's runtime API as thin routes over ``gateway.serving``.

``create_app`` is the one entry point: it is handed the data plane (``gateway.serving.plane``)
that the composition root (``gateway/serve.py``) built, and only adds HTTP around it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.edge.auth import auth_middleware
from gateway.edge.errors import handle_api_error, handle_unexpected
from gateway.edge.hotpath import InvocationsApp, InvocationsShortcut
from gateway.edge.model_routes import model_routes
from gateway.edge.stream import PATH as STREAM_PATH
from gateway.edge.stream import ResponseStreamApp
from gateway.errors import ApiError
from gateway.live import (
    ContainerState,
    EndpointTable,
    Instance,
    LiveEndpoint,
    Variant,
)
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.serving.dispatch import Dispatcher
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings


def create_app(
    plane: DataPlane | Iterable[Instance | LiveEndpoint] | EndpointTable,
    settings: GatewaySettings,
    *,
    routes: Sequence[BaseRoute] = (),
    asynchronous: ASGIApp | None = None,
) -> Starlette:
    """The runtime API over ``plane`` (built here from endpoints when given those); upstream
    clients live as long as the app's lifespan. ``asynchronous`` is InvokeEndpointAsync's app,
    taken by the shortcut (its route, for the rest, is one of ``routes``)."""
    if not isinstance(plane, DataPlane):
        plane = DataPlane(plane, settings)
    table, metrics, core = plane.table, plane.metrics, plane.invocations
    invocations = InvocationsApp(core, settings.max_payload)
    stream = ResponseStreamApp(core, settings.max_payload)

    async def ping(request: Request) -> Response:
        down = [
            f"{c.endpoint}/{c.hostname}: {c.state.value}"
            for e in table
            for c in e.containers
            if not c.healthy
        ]
        if not down:
            return Response(b"", status_code=200)
        return JSONResponse({"Status": "Unhealthy", "Containers": down}, status_code=503)

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse({"Endpoints": [_describe(e, plane.dispatcher) for e in table.live()]})

    async def describe_endpoint(request: Request) -> Response:
        found = core.endpoint(request.path_params["name"])
        return JSONResponse(_describe(found, plane.dispatcher))

    async def prometheus(request: Request) -> Response:
        await metrics.containers.refresh()  # batching series live in the containers
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await plane.open()
        try:
            yield
        finally:
            await plane.aclose()

    app = Starlette(
        routes=[
            # These two are reached only when the shortcut does not take them: same apps.
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route(STREAM_PATH, stream, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/endpoints", list_endpoints, methods=["GET"]),
            Route("/endpoints/{name}", describe_endpoint, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            *model_routes(core, plane.dispatcher),
            *routes,
        ],
        exception_handlers={ApiError: handle_api_error, Exception: handle_unexpected},
        lifespan=lifespan,
        middleware=[
            *auth_middleware(settings),
            Middleware(
                InvocationsShortcut,
                invocations=invocations,
                stream=stream,
                asynchronous=asynchronous,
            ),
        ],
    )
    return app


def _status(endpoint: LiveEndpoint) -> str:
    """SageMaker's EndpointStatus, derived from the containers' states."""
    states = {c.state for r in endpoint.runtimes for c in r.containers}
    # None: every variant is at zero, or an endpoint for components (their copies count).
    if not states or states == {ContainerState.HEALTHY}:
        return "InService"
    if ContainerState.FAILED in states:
        return "Failed"
    if states <= {ContainerState.STARTING, ContainerState.HEALTHY}:
        return "Creating"
    return "OutOfService"


def _describe(endpoint: LiveEndpoint, dispatcher: Dispatcher) -> dict[str, Any]:
    # A variant scaled to zero has no instance: the first one running speaks for the endpoint.
    first = next((i for v in endpoint.variants for i in v.instances), None)
    spec = (
        first.spec
        if first is not None
        else (endpoint.variants[0].spec if endpoint.variants else endpoint.spec)
    )
    described = {
        "EndpointName": endpoint.name,
        "EndpointStatus": _status(endpoint),
        "Mode": spec.execution.value,
        "Variant": spec.variant,
        "Timeout": endpoint.spec.timeout,
        "Containers": _containers(first) if first is not None else [],
        "ProductionVariants": [_variant(v, dispatcher) for v in endpoint.variants],
        "ShadowProductionVariants": [_variant(v, dispatcher) for v in endpoint.shadows],
    }
    if endpoint.for_components:
        described["InferenceComponents"] = [
            {"InferenceComponentName": name, **_variant(v, dispatcher)}
            for name, v in sorted(endpoint.components.items())
        ]
    return described


def _variant(variant: Variant, dispatcher: Dispatcher) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VariantName": variant.name,
        "Mode": variant.spec.execution.value,
        # What runs: an instance whose containers are starting or restarting does not count.
        "CurrentInstanceCount": sum(1 for i in variant.instances if i.healthy),
        "Instances": [_containers(i) for i in variant.instances],
        "InstanceDetails": [_instance(i, dispatcher) for i in variant.instances],
    }
    if variant.sampling is None:
        out["CurrentWeight"] = variant.weight
    else:
        out["SamplingPercentage"] = variant.sampling
    return out


def _instance(instance: Instance, dispatcher: Dispatcher) -> dict[str, Any]:
    """One instance's load now: its requests in flight and, per MultiModel container (by
    hostname), the TargetModels it holds; what ``tandem endpoints describe`` shows."""
    loaded = {
        c.hostname: sorted(manager.loaded_models)
        for c in instance.containers
        if (manager := dispatcher.manager(c)) is not None
    }
    out: dict[str, Any] = {
        "InstanceName": instance.deployment,
        "Healthy": instance.healthy,
        "InFlight": instance.inflight,
        "LoadedModels": loaded,
    }
    reserved = instance.containers[0].reservation if instance.containers else None
    if instance.component is not None and reserved is not None:
        out["PlacedOn"] = instance.host
        out["Reservation"] = {
            "NumberOfCpuCoresRequired": reserved.cores,
            "MinMemoryRequiredInMb": reserved.memory_mb,
            "MaxMemoryRequiredInMb": reserved.max_memory_mb,
        }
    return out


def _containers(endpoint: Instance) -> list[dict[str, Any]]:
    return [
        {
            "ContainerHostname": c.hostname,
            "State": c.state.value,
            "Restarts": c.restarts,
            "Mode": c.spec.mode.value,
            "Framework": c.spec.framework.value if c.spec.framework else None,
            "Url": c.url or None,
        }
        for c in endpoint.containers
    ]
