"""Errors in SageMaker's wire shape, so that ``boto3`` raises the matching exception class.

botocore takes the code from the ``x-amzn-ErrorType`` header and the modelled fields from JSON body
keys with their exact names (``Message``, ``OriginalStatusCode`` ...). Every error the gateway
answers is a ``TandemError``; one handler renders it, and anything else becomes an
``InternalFailure`` whose details stay in the log.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("tandem.gateway")

#: Longest container message copied into an error, so one bad answer cannot bloat every log line.
MAX_ORIGINAL_MESSAGE = 2048


class TandemError(Exception):
    """Base of every error a client can see: carries its SageMaker code and HTTP status."""

    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 500

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        #: Extra modelled fields, rendered into the JSON body under their exact names.
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"Message": self.message, **self.fields}


class ValidationError(TandemError):
    code = "ValidationError"
    status = 400


class ModelError(TandemError):
    """A container answered non-2xx (or not in time); the message names it and the step."""

    code = "ModelError"
    status = 424

    def __init__(
        self,
        message: str,
        *,
        original_status: int,
        original_message: str,
        log_stream: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
        }
        if log_stream is not None:
            fields["LogStreamArn"] = log_stream
        super().__init__(message, **fields)
        self.original_status = original_status


class ModelNotReady(TandemError):
    code = "ModelNotReadyException"
    status = 429


class InternalFailure(TandemError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(TandemError):
    code = "ServiceUnavailable"
    status = 503


def error_response(exc: TandemError, request_id: str | None = None) -> Response:
    """Render ``exc`` the way botocore's rest-json parser reads errors."""
    headers = {"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": request_id or str(uuid.uuid4())}
    return Response(
        json.dumps(exc.body()),
        status_code=exc.status,
        headers=headers,
        media_type="application/json",
    )


async def handle_tandem_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for ``TandemError``."""
    assert isinstance(exc, TandemError)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: answer an ``InternalFailure`` that carries no detail of the bug."""
    # Starlette re-raises after this answer, so the server logs the stack trace; never the client.
    log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(InternalFailure("An internal error occurred in the gateway."))


def truncate(text: str, limit: int = MAX_ORIGINAL_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + "...(truncated)"
