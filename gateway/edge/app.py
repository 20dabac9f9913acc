"""The gateway's HTTP edge: SageMaker's runtime API as thin routes over ``gateway.serving``.

``create_app`` is the one entry point: the process side builds the ``Instance`` objects,
keeps their state current, and serves the returned app with uvicorn.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.capture import CaptureCollector, CaptureWriter
from gateway.edge.auth import auth_middleware
from gateway.edge.errors import handle_api_error, handle_unexpected
from gateway.edge.hotpath import InvocationsApp, InvocationsShortcut, pick
from gateway.edge.model_routes import model_routes
from gateway.edge.stream import PATH as STREAM_PATH
from gateway.edge.stream import ResponseStreamApp
from gateway.errors import ApiError, InvalidRequest
from gateway.live import (
    ContainerState,
    EndpointTable,
    Instance,
    LiveEndpoint,
    Variant,
)
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.metrics import GatewayMetrics
from gateway.models.hosting import close_all, make_managers, preload_all
from gateway.serving.dispatch import Dispatcher
from gateway.settings import GatewaySettings
from pipelines.spec import NAME_PATTERN

#: SageMaker names the account in "not found" messages; a self-hosted gateway has none.
ACCOUNT = "local"
_NAME = re.compile(NAME_PATTERN)


def create_app(
    endpoints: Iterable[Instance | LiveEndpoint] | EndpointTable,
    settings: GatewaySettings,
    *,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The runtime API for ``endpoints``; upstream clients live as long as the app's lifespan."""
    table = endpoints if isinstance(endpoints, EndpointTable) else EndpointTable(endpoints)
    state_dir = settings.state_dir.resolve()
    dispatcher = Dispatcher(
        upstream=settings.upstream,
        max_payload=settings.max_payload,
        # The supervisor writes each container's output there; ModelError points at it.
        log_stream=lambda c: str(state_dir / c.deployment / c.hostname / "container.log"),
    )
    metrics = GatewayMetrics(table, dispatcher.manager)
    metrics.registry.register(
        CaptureCollector(
            lambda: [w for e in table.live() if isinstance(w := e.capture, CaptureWriter)]
        )
    )
    dispatcher.host_models(make_managers(table, settings, dispatcher.upstream, metrics))

    def endpoint_or_error(name: str) -> LiveEndpoint:
        endpoint = table.get(name)
        if endpoint is not None:
            return endpoint
        if len(name) > 63 or not _NAME.match(name):
            raise InvalidRequest(
                f"1 validation error detected: Value '{name[:100]}' at 'endpointName' failed to "
                f"satisfy constraint: Member must satisfy regular expression pattern: "
                f"{NAME_PATTERN} and have length less than or equal to 63"
            )
        raise InvalidRequest(f"Endpoint {name} of account {ACCOUNT} not found.")

    def route(name: str, target_variant: str | None = None) -> Instance:
        """The instance that answers a request for ``name``: what every runtime call invokes."""
        return pick(endpoint_or_error(name), target_variant).instance()

    invocations = InvocationsApp(dispatcher, metrics, endpoint_or_error, settings.max_payload)
    stream = ResponseStreamApp(route, dispatcher, metrics, settings.max_payload)

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
        return JSONResponse({"Endpoints": [_describe(e) for e in table.live()]})

    async def describe_endpoint(request: Request) -> Response:
        return JSONResponse(_describe(endpoint_or_error(request.path_params["name"])))

    async def prometheus(request: Request) -> Response:
        await metrics.containers.refresh()  # batching series live in the containers
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dispatcher.open(table)
        try:
            # Pinned models are in memory before the first request.
            await preload_all(dispatcher.managers)
            yield
        finally:
            await invocations.shadows.aclose()
            await close_all(dispatcher.managers)
            await dispatcher.aclose()

    app = Starlette(
        routes=[
            # These two are reached only when the shortcut does not take them: same apps.
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route(STREAM_PATH, stream, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/endpoints", list_endpoints, methods=["GET"]),
            Route("/endpoints/{name}", describe_endpoint, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            *model_routes(endpoint_or_error, dispatcher.manager),
            *routes,
        ],
        exception_handlers={ApiError: handle_api_error, Exception: handle_unexpected},
        lifespan=lifespan,
        middleware=[
            *auth_middleware(settings),
            Middleware(InvocationsShortcut, invocations=invocations, stream=stream),
        ],
    )
    app.state.dispatcher = dispatcher
    app.state.metrics = metrics
    app.state.table = table
    #: ``route(name, target_variant)``: the instance to invoke (for other runtime calls).
    app.state.route = route
    return app


def _status(endpoint: LiveEndpoint) -> str:
    """SageMaker's EndpointStatus, derived from the containers' states."""
    states = {c.state for r in endpoint.runtimes for c in r.containers}
    if states == {ContainerState.HEALTHY}:
        return "InService"
    if ContainerState.FAILED in states:
        return "Failed"
    if states <= {ContainerState.STARTING, ContainerState.HEALTHY}:
        return "Creating"
    return "OutOfService"


def _describe(endpoint: LiveEndpoint) -> dict[str, Any]:
    first = endpoint.variants[0].instances[0]
    return {
        "EndpointName": endpoint.name,
        "EndpointStatus": _status(endpoint),
        "Mode": first.spec.execution.value,
        "Variant": first.variant,
        "Timeout": endpoint.spec.timeout,
        "Containers": _containers(first),
        "ProductionVariants": [_variant(v) for v in endpoint.variants],
        "ShadowProductionVariants": [_variant(v) for v in endpoint.shadows],
    }


def _variant(variant: Variant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VariantName": variant.name,
        "Mode": variant.spec.execution.value,
        "CurrentInstanceCount": len(variant.instances),
        "Instances": [_containers(i) for i in variant.instances],
    }
    if variant.sampling is None:
        out["CurrentWeight"] = variant.weight
    else:
        out["SamplingPercentage"] = variant.sampling
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
