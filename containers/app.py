"""The container contract over HTTP: thin starlette routes over :class:`ModelService`.

``GET /ping``, ``POST /invocations``, ``GET /execution-parameters``, ``GET /metrics`` (Prometheus:
adaptive batching's per-model batch sizes and waits, and the container's own time per model,
which every answer to an invocation also carries: :mod:`containers.invocation_metrics`); with
``SAGEMAKER_MULTI_MODEL`` also ``POST/GET /models``, ``GET/DELETE /models/{name}`` and
``POST /models/{name}/invoke``.
Every error is JSON ``{"error": <code>, "message": <text>}``, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as METRICS_TYPE
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from containers.errors import BadRequest, ContainerError, PayloadTooLarge
from containers.frameworks import ModelFramework
from containers.invocation_metrics import HEADER as TIMING
from containers.invocation_metrics import InvocationTimes
from containers.service import SINGLE_MODEL_NAME, ModelService
from containers.settings import ContainerSettings, configure_logging
from containers.streaming import StreamedParts, streaming_response

log = logging.getLogger(__name__)
TARGET_MODEL = "x-amzn-sagemaker-target-model"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _container_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ContainerError)
    if exc.status >= 500:
        log.warning(
            "%s %s -> %d %s: %s", request.method, request.url.path, exc.status, exc.code, exc
        )
    return _error(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal_error", f"internal error: {type(exc).__name__}")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past ``limit``: by Content-Length first, else while streaming."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BadRequest(f"invalid Content-Length {length[:40]!r}")
        if int(length) > limit:
            raise PayloadTooLarge(f"body of {length} bytes is over the {limit}-byte limit")
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ContainerSettings, framework: ModelFramework | None = None) -> Starlette:
    service = ModelService(settings, framework)
    times = InvocationTimes(service.batch_metrics.registry)
    limit = settings.max_payload_bytes

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(service.batch_metrics.registry), media_type=METRICS_TYPE)

    async def execution_parameters(request: Request) -> Response:
        return JSONResponse(service.execution_parameters())

    async def _invoke(request: Request, name: str | None) -> Response:
        """The answer, with the container's own time on it (``Server-Timing``) and counted per
        model; a streamed answer has neither (its time is not known when its head is sent)."""
        started = time.perf_counter()
        try:
            loaded = service.models.get(name) if name is not None else service.models.only()
            with service.arriving(loaded):
                body = await read_body(request, limit)
            headers = request.headers
            reply = await service.invoke(
                loaded, body, headers.get("content-type"), headers.get("accept"), headers
            )
            if isinstance(reply.body, StreamedParts):  # a generator from user code
                return streaming_response(reply.body, reply.content_type, reply.headers or None)
            response: Response = Response(
                reply.body, media_type=reply.content_type, headers=reply.headers or None
            )
        except ContainerError as exc:
            response = await _container_error(request, exc)
        model = name if name is not None else SINGLE_MODEL_NAME
        response.headers[TIMING] = times.observe(model, time.perf_counter() - started)
        return response

    async def invocations(request: Request) -> Response:
        if not settings.multi_model:
            return await _invoke(request, None)
        target = request.headers.get(TARGET_MODEL)
        if not target:
            raise BadRequest(
                "this is a multi-model container: use POST /models/{name}/invoke or send "
                "X-Amzn-SageMaker-Target-Model"
            )
        return await _invoke(request, target)

    async def invoke_model(request: Request) -> Response:
        return await _invoke(request, request.path_params["name"])

    async def load_model(request: Request) -> Response:
        spec = await _json_object(request)
        name, url = spec.get("model_name"), spec.get("url")
        if not isinstance(name, str) or not isinstance(url, str):
            raise BadRequest('the body must be {"model_name": <name>, "url": <local directory>}')
        loaded = await service.load(name, url)
        # CPU time, not wall time: what a load costs whatever else runs beside it (the
        # gateway's eviction weighs it; docs/multimodel.md).
        cpu = round(loaded.load_cpu, 6)
        return JSONResponse({"status": f"Model {name!r} loaded", "loadCpuSeconds": cpu})

    async def list_models(request: Request) -> Response:
        raw_limit = request.query_params.get("limit")
        if raw_limit is not None and not raw_limit.isdigit():
            raise BadRequest(f"limit must be a positive integer, got {raw_limit[:40]!r}")
        page_size = int(raw_limit) if raw_limit is not None else None
        return JSONResponse(
            service.models.page(request.query_params.get("next_page_token"), page_size)
        )

    async def describe_model(request: Request) -> Response:
        loaded = service.models.get(request.path_params["name"])
        return JSONResponse({"modelName": loaded.name, "modelUrl": loaded.url})

    async def delete_model(request: Request) -> Response:
        name = request.path_params["name"]
        await service.unload(name)
        return JSONResponse({"status": f"Model {name!r} unloaded"})

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/execution-parameters", execution_parameters, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if settings.multi_model:
        routes += [
            Route("/models", load_model, methods=["POST"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/models/{name:path}/invoke", invoke_model, methods=["POST"]),
            Route("/models/{name:path}", describe_model, methods=["GET"]),
            Route("/models/{name:path}", delete_model, methods=["DELETE"]),
        ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ContainerError: _container_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.service = service
    return app


async def _json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request, 1024 * 1024)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def app_factory() -> Starlette:
    """For ``uvicorn --factory`` worker processes: settings from the environment."""
    settings = ContainerSettings()
    configure_logging(settings.log_level)
    return create_app(settings)
