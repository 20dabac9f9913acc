"""The gateway's HTTP edge: SageMaker's runtime API as thin routes over ``gateway.dispatch``.

``create_app`` is the one entry point: the process side builds the ``EndpointRuntime`` objects,
keeps their state current, and serves the returned app with uvicorn.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import auth_middleware
from gateway.dispatch import Dispatcher, InvocationRequest
from gateway.errors import (
    TandemError,
    ValidationError,
    error_response,
    handle_tandem_error,
    handle_unexpected,
)
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.metrics import GatewayMetrics
from gateway.models.hosting import attach_managers, close_all, preload_all
from gateway.models.routes import model_routes
from gateway.runtime import ContainerState, EndpointRuntime
from gateway.settings import GatewaySettings
from pipelines.spec import NAME_PATTERN

#: SageMaker names the account in "not found" messages; a self-hosted gateway has none.
ACCOUNT = "local"
_NAME = re.compile(NAME_PATTERN)

# (header, field name in SageMaker's API, min length, max length), checked once per request.
_HEADER_LIMITS = (
    (b"x-amzn-sagemaker-custom-attributes", "customAttributes", 0, 1024),
    (b"x-amzn-sagemaker-target-model", "targetModel", 1, 1024),
    (b"x-amzn-sagemaker-target-variant", "targetVariant", 0, 63),
    (b"x-amzn-sagemaker-target-container-hostname", "targetContainerHostname", 0, 63),
    (b"x-amzn-sagemaker-inference-id", "inferenceId", 1, 64),
)


def create_app(endpoints: list[EndpointRuntime], settings: GatewaySettings) -> Starlette:
    """The runtime API for ``endpoints``; upstream clients live as long as the app's lifespan."""
    by_name = {e.name: e for e in endpoints}
    state_dir = settings.state_dir.resolve()
    dispatcher = Dispatcher(
        upstream=settings.upstream,
        max_payload=settings.max_payload,
        # The supervisor writes each container's output there; ModelError points at it.
        log_stream=lambda c: str(state_dir / c.endpoint / c.hostname / "container.log"),
    )
    metrics = GatewayMetrics(endpoints)
    managers = attach_managers(endpoints, settings, dispatcher.upstream, metrics)
    limit = settings.max_payload

    def endpoint_or_error(name: str) -> EndpointRuntime:
        endpoint = by_name.get(name)
        if endpoint is not None:
            return endpoint
        if len(name) > 63 or not _NAME.match(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name[:100]}' at 'endpointName' failed to "
                f"satisfy constraint: Member must satisfy regular expression pattern: "
                f"{NAME_PATTERN} and have length less than or equal to 63"
            )
        raise ValidationError(f"Endpoint {name} of account {ACCOUNT} not found.")

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        timings: list[tuple[str, float]] = []
        endpoint: EndpointRuntime | None = None
        try:
            endpoint = endpoint_or_error(request.path_params["name"])
            headers = dict(request.scope["headers"])
            body = await _read_body(request, headers, limit)
            invocation = _invocation(headers, endpoint, body)
            result = await dispatcher.invoke(endpoint, invocation, timings)
        except TandemError as exc:
            if endpoint is not None:
                metrics.endpoint(endpoint.name).record(time.perf_counter() - started, timings, exc)
            response = error_response(exc, request_id)
            if timings:
                response.headers["Server-Timing"] = _server_timing(timings, started)
            return response
        except ClientDisconnect:
            return Response(status_code=499)  # nobody is left to read it
        metrics.endpoint(endpoint.name).record(time.perf_counter() - started, timings)
        headers = {
            "x-Amzn-Invoked-Production-Variant": endpoint.variant,
            "x-amzn-RequestId": request_id,
            "Server-Timing": _server_timing(timings, started),
        }
        if result.content_type is not None:
            headers["Content-Type"] = result.content_type
        if result.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
        return Response(result.body, headers=headers)

    async def ping(request: Request) -> Response:
        down = [
            f"{c.endpoint}/{c.hostname}: {c.state.value}"
            for e in endpoints
            for c in e.containers
            if not c.healthy
        ]
        if not down:
            return Response(b"", status_code=200)
        return _json({"Status": "Unhealthy", "Containers": down}, status=503)

    async def list_endpoints(request: Request) -> Response:
        return _json({"Endpoints": [_describe(e) for e in endpoints]})

    async def describe_endpoint(request: Request) -> Response:
        return _json(_describe(endpoint_or_error(request.path_params["name"])))

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dispatcher.open(endpoints)
        try:
            await preload_all(managers)  # pinned models are in memory before the first request
            yield
        finally:
            await close_all(managers)
            await dispatcher.aclose(endpoints)

    app = Starlette(
        routes=[
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/endpoints", list_endpoints, methods=["GET"]),
            Route("/endpoints/{name}", describe_endpoint, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            *model_routes(endpoint_or_error),
        ],
        exception_handlers={TandemError: handle_tandem_error, Exception: handle_unexpected},
        lifespan=lifespan,
        middleware=auth_middleware(settings),
    )
    app.state.dispatcher = dispatcher
    app.state.metrics = metrics
    return app


async def _read_body(request: Request, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` (never read whole)."""
    length = headers.get(b"content-length")
    if length is not None and length.isdigit():
        if int(length) > limit:
            raise _too_large(int(length), limit)
        return await request.body()  # the server holds the client to its Content-Length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int | None, limit: int) -> ValidationError:
    what = "Request body" if size is None else f"Request body of {size} bytes"
    return ValidationError(f"{what} exceeds the limit of {limit} bytes.")


def _invocation(
    headers: dict[bytes, bytes], endpoint: EndpointRuntime, body: bytes
) -> InvocationRequest:
    # One dict of the raw (lower-cased, per ASGI) headers: a lookup each, not a scan each.
    for name, field, low, high in _HEADER_LIMITS:
        value = headers.get(name)
        if value is not None and not low <= len(value) <= high:
            raise ValidationError(
                f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
                f"Member must have length between {low} and {high} (header {name.decode()})"
            )
    variant = _text(headers, b"x-amzn-sagemaker-target-variant")
    if variant and variant != endpoint.variant:
        raise ValidationError(
            f"Target variant {variant} not found for endpoint {endpoint.name} "
            f"(its variant is {endpoint.variant})."
        )
    return InvocationRequest(
        body=body,
        content_type=_text(headers, b"content-type"),
        accept=_text(headers, b"accept"),
        custom_attributes=_text(headers, b"x-amzn-sagemaker-custom-attributes"),
        target_model=_text(headers, b"x-amzn-sagemaker-target-model"),
        target_container=_text(headers, b"x-amzn-sagemaker-target-container-hostname"),
        inference_id=_text(headers, b"x-amzn-sagemaker-inference-id"),
    )


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def _server_timing(timings: list[tuple[str, float]], started: float) -> str:
    """``host;dur=ms`` per step plus the gateway's own ``overhead``, as devtools show it."""
    total = time.perf_counter() - started
    model = 0.0
    parts = []
    for hostname, seconds in timings:
        model += seconds
        parts.append(f"{hostname};dur={seconds * 1000:.3f}")
    parts.append(f"overhead;dur={max(total - model, 0.0) * 1000:.3f}")
    return ", ".join(parts)


def _status(endpoint: EndpointRuntime) -> str:
    """SageMaker's EndpointStatus, derived from the containers' states."""
    states = {c.state for c in endpoint.containers}
    if states == {ContainerState.HEALTHY}:
        return "InService"
    if ContainerState.FAILED in states:
        return "Failed"
    if states <= {ContainerState.STARTING, ContainerState.HEALTHY}:
        return "Creating"
    return "OutOfService"


def _describe(endpoint: EndpointRuntime) -> dict[str, Any]:
    return {
        "EndpointName": endpoint.name,
        "EndpointStatus": _status(endpoint),
        "Mode": endpoint.spec.execution.value,
        "Variant": endpoint.variant,
        "Timeout": endpoint.spec.timeout,
        "Containers": [
            {
                "ContainerHostname": c.hostname,
                "State": c.state.value,
                "Restarts": c.restarts,
                "Mode": c.spec.mode.value,
                "Framework": c.spec.framework.value if c.spec.framework else None,
                "Url": c.url or None,
            }
            for c in endpoint.containers
        ],
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json")
