"""Render ``ApiError`` the way botocore reads errors: ``x-amzn-ErrorType`` and a JSON body.

botocore takes the code from the ``x-amzn-ErrorType`` header and the modelled fields from JSON body
keys with their exact names (``Message``, ``OriginalStatusCode`` ...).
"""

from __future__ import annotations

import json
import logging
import uuid

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ApiError, InternalFailure

log = logging.getLogger("tandem.gateway")


def error_response(exc: ApiError, request_id: str | None = None) -> Response:
    """Render ``exc`` the way botocore reads errors, for both protocols the gateway speaks.

    The runtime API's rest-json parser takes the code from ``x-amzn-ErrorType``; the control
    plane's JSON 1.1 parser from the body's ``__type`` (an error raised before the control plane
    sees the request, such as a refused signature, must still read right).
    """
    headers = {"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": request_id or str(uuid.uuid4())}
    return Response(
        json.dumps({"__type": exc.code, **exc.body()}),
        status_code=exc.status,
        headers=headers,
        media_type="application/json",
    )


async def handle_api_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for ``ApiError``."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: answer an ``InternalFailure`` that carries no detail of the bug."""
    # Starlette re-raises after this answer, so the server logs the stack trace; never the client.
    log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(InternalFailure("An internal error occurred in the gateway."))
