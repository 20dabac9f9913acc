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
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.control.plane import ControlPlane
from gateway.errors import (
    CONTROL_CONTENT_TYPE,
    ControlError,
    ControlInternal,
    SerializationFailure,
    UnknownOperation,
)

log = logging.getLogger("tandem.control")

TARGET_PREFIX = "SageMaker."
#: Largest request body: 15 containers with 100 environment entries of 2 KiB each fit well.
MAX_BODY = 8 * 1024 * 1024
#: Media types taken as JSON 1.1 (SDKs send the first; 1.0 is what some older tools send).
ACCEPTED_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")

#: Called with each request before anything else; raises ``AccessDenied`` to refuse it.
Authorize = Callable[[Request], Awaitable[None] | None]


def control_route(plane: ControlPlane, *, authorize: Authorize | None = None) -> Route:
    """``POST /`` for the gateway's app."""

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            if authorize is not None:
                pending = authorize(request)
                if pending is not None:
                    await pending
            operation, params = await read(request)
            body = await plane.acall(operation, params)
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

    return Route("/", endpoint, methods=["POST"], name="control-plane")


def control_app(plane: ControlPlane, *, authorize: Authorize | None = None) -> Starlette:
    """The control plane alone, as an ASGI app (for tests, or to mount beside other routes)."""
    return Starlette(routes=[control_route(plane, authorize=authorize)])


async def read(request: Request) -> tuple[str, dict[str, Any]]:
    """The operation and its input; ``UnknownOperation`` or ``SerializationFailure`` if the
    request is not SageMaker's JSON 1.1."""
    target = request.headers.get("x-amz-target", "")
    if not target.startswith(TARGET_PREFIX) or len(target) == len(TARGET_PREFIX):
        raise UnknownOperation(
            f"X-Amz-Target must name a SageMaker operation, e.g. SageMaker.ListEndpoints "
            f"(got {target[:100]!r})."
        )
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise SerializationFailure(
            f"Content-Type must be {CONTROL_CONTENT_TYPE} (got {media[:100]!r})."
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise SerializationFailure(f"The request body is larger than {MAX_BODY} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise SerializationFailure(f"The request body is larger than {MAX_BODY} bytes.")
    try:
        params = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationFailure(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise SerializationFailure(
            f"The request body must be a JSON object, not {type(params).__name__}."
        )
    return target[len(TARGET_PREFIX) :], params


def error_response(exc: ControlError, request_id: str) -> Response:
    """An error in JSON 1.1's shape."""
    return Response(
        json.dumps(exc.body()).encode(),
        status_code=exc.status,
        media_type=CONTROL_CONTENT_TYPE,
        headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": request_id},
    )
