"""Application Auto Scaling on the gateway's port: ``POST /`` with
``X-Amz-Target: AnyScaleFrontendService.<Op>`` (JSON 1.1).

The route matches only requests with that target, so it sits before the control plane's
``POST /`` and everything else goes on to it. It changes capacity, so it takes the control
plane's guard (the ``admin`` role). The work runs in a worker thread: it reads and writes SQLite.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.autoscaling.api import ScalingApi
from gateway.autoscaling.errors import InternalServiceException, ValidationException
from gateway.cloudwatch import wire
from gateway.errors import ApiError
from gateway.services import ServiceRoute, target_prefix

log = logging.getLogger("tandem.autoscaling")

TARGET = "AnyScaleFrontendService"
MEDIA = "application/x-amz-json-1.1"
MAX_BODY = 1024 * 1024


def autoscaling_route(
    api: ScalingApi, authorize: Callable[[Request], None] | None = None
) -> BaseRoute:
    """The route to put before the control plane's ``POST /``."""

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        name = request.headers.get("x-amz-target", "").removeprefix(f"{TARGET}.")
        try:
            if authorize is not None:
                authorize(request)
            raw = bytearray()
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_BODY:
                    raise ValidationException(f"The request body is over {MAX_BODY} bytes.")
            try:
                params = json.loads(bytes(raw)) if raw.strip() else {}
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValidationException(f"The request body is not JSON: {exc}") from None
            if not isinstance(params, dict):
                raise ValidationException("The request body must be a JSON object.")
            result = await asyncio.to_thread(api.call, name, params)
        except ApiError as exc:
            return _error(exc.code, exc.message, exc.status, request_id)
        except Exception:
            log.exception("Application Auto Scaling call failed (request %s)", request_id)
            fault = InternalServiceException(f"An internal error occurred (request {request_id}).")
            return _error(fault.code, fault.message, fault.status, request_id)
        body = json.dumps(wire.plain(result), separators=(",", ":")).encode()
        return Response(body, media_type=MEDIA, headers={"x-amzn-RequestId": request_id})

    return ServiceRoute("/", endpoint, target_prefix(TARGET))


def _error(code: str, message: str, status: int, request_id: str) -> Response:
    body = json.dumps({"__type": code, "Message": message}).encode()
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    return Response(body, status_code=status, media_type=MEDIA, headers=headers)
