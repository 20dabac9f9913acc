"""The control plane on HTTP: AWS's JSON 1.1 protocol at ``POST /``, as boto3 speaks it.

A request names its operation in ``X-Amz-Target: SageMaker.<Operation>`` and carries its input as
a JSON object (``Content-Type: application/x-amz-json-1.1``). The answer is the operation's
output as JSON, or an error: HTTP 400 (500 for a bug) with ``{"__type": code, "message": ...}``
and the ``x-amzn-ErrorType`` header, from which botocore raises ``ClientError`` with that code.
Every answer has an ``x-amzn-RequestId``. The work runs off the event loop (``acall``), so the
control plane's fsyncs never stall the runtime API served by the same loop.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.control.plane import ControlPlane
from gateway.control.wire import parse_body
from gateway.errors import (
    CONTROL_CONTENT_TYPE,
    ControlError,
    ControlInternal,
    SerializationFailure,
    UnknownOperation,
)
from gateway.services import ServiceRoute, target_prefix

log = logging.getLogger("tandem.control")

TARGET_PREFIX = "SageMaker."
#: Largest request body: 15 containers with 100 environment entries of 2 KiB each fit well.
MAX_BODY = 8 * 1024 * 1024
#: An oversized body is still read (and dropped) up to this size, so that the client, which
#: sends it whole before it reads, gets the answer rather than a reset connection.
DRAIN_LIMIT = 64 * 1024 * 1024
#: Media types taken as JSON 1.1 (SDKs send the first; 1.0 is what some older tools send).
ACCEPTED_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")

#: Called with each request before anything else; raises ``AccessDenied`` to refuse it.
Authorize = Callable[[Request], Awaitable[None] | None]
#: An AWS service in JSON 1.1 (the control plane, CloudWatch Logs ...): operation, input ->
#: output, raising ``ControlError``s in its own codes.
Service = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def control_route(plane: ControlPlane, *, authorize: Authorize | None = None) -> Route:
    """``POST /`` for the gateway's app: SageMaker's operations, and ``UnknownOperation`` for
    whatever no service route before it claimed."""
    endpoint = _endpoint(plane.acall, TARGET_PREFIX, authorize)
    return Route("/", endpoint, methods=["POST"], name="control-plane")


def service_route(
    call: Service, prefix: str, *, authorize: Authorize | None = None
) -> ServiceRoute:
    """Another AWS service in JSON 1.1 on ``POST /`` (``gateway.services``): it takes only the
    requests whose ``X-Amz-Target`` is ``<prefix>.<Operation>``, so it goes before
    ``control_route``."""
    return ServiceRoute("/", _endpoint(call, f"{prefix}.", authorize), target_prefix(prefix))


def control_app(
    plane: ControlPlane,
    *,
    authorize: Authorize | None = None,
    services: Sequence[BaseRoute] = (),
) -> Starlette:
    """The control plane alone (and the ``services`` routes before it), as an ASGI app (for
    tests, or to mount beside other routes)."""
    return Starlette(routes=[*services, control_route(plane, authorize=authorize)])


def _endpoint(
    call: Service, prefix: str, authorize: Authorize | None
) -> Callable[[Request], Awaitable[Response]]:
    """One JSON 1.1 call: authorized, read, run by ``call``, answered in JSON 1.1's shape."""

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            if authorize is not None:
                pending = authorize(request)
                if pending is not None:
                    await pending
            operation, params = await read(request, prefix)
            body = await call(operation, params)
        except ControlError as exc:
            return error_response(exc, request_id)
        except Exception:
            log.exception("control plane call failed (request %s)", request_id)
            return error_response(
                ControlInternal(f"An internal error occurred (request {request_id})."), request_id
            )
        return Response(
            json.dumps(body, separators=(",", ":"), default=str).encode(),
            media_type=CONTROL_CONTENT_TYPE,
            headers={"x-amzn-RequestId": request_id},
        )

    return endpoint


async def read(request: Request, prefix: str = TARGET_PREFIX) -> tuple[str, dict[str, Any]]:
    """The operation and its input; ``UnknownOperation`` or ``SerializationFailure`` if the
    request is not JSON 1.1 with an ``X-Amz-Target`` of ``<prefix><Operation>``."""
    target = request.headers.get("x-amz-target", "")
    if not target.startswith(prefix) or len(target) == len(prefix):
        raise UnknownOperation(
            f"X-Amz-Target must name a SageMaker operation, e.g. SageMaker.ListEndpoints "
            f"(got {target[:100]!r})."
        )
    return target[len(prefix) :], await read_body(request)


async def read_body(request: Request) -> dict[str, Any]:
    """The input of a JSON 1.1 call: a JSON object within ``MAX_BODY``."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise SerializationFailure(
            f"Content-Type must be {CONTROL_CONTENT_TYPE} (got {media[:100]!r})."
        )
    return parse_body(await _body(request))


async def _body(request: Request) -> bytes:
    """The body, within ``MAX_BODY``; an oversized one is drained, then refused."""
    length = request.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    too_large = SerializationFailure(f"The request body is larger than {MAX_BODY} bytes.")
    if declared is not None and declared > DRAIN_LIMIT:
        raise too_large  # not worth reading: the connection closes after the answer
    raw = bytearray()
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > DRAIN_LIMIT:
            break
        if seen <= MAX_BODY:
            raw += chunk
    if seen > MAX_BODY or (declared is not None and declared > MAX_BODY):
        raise too_large
    return bytes(raw)


def error_response(exc: ControlError, request_id: str) -> Response:
    """An error in JSON 1.1's shape."""
    return Response(
        json.dumps(exc.body()).encode(),
        status_code=exc.status,
        media_type=CONTROL_CONTENT_TYPE,
        headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": request_id},
    )
