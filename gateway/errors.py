"""The gateway's errors: one root for all of them, one base for those a client sees.

``TandemError`` (from ``pipelines.errors``) is the root of every error raised on purpose; the CLI
catches it once. ``ApiError`` is the base of the errors in SageMaker's wire shape: each carries
its code and status, and ``gateway.edge.errors`` renders them, so that ``boto3`` raises the
matching exception class. Anything else becomes an ``InternalFailure`` whose details stay in the
log. This module imports no web framework: the core raises these, the edge renders them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipelines.errors import TandemError

__all__ = [
    "ApiError",
    "InternalFailure",
    "InvalidRequest",
    "ModelError",
    "ModelNotReady",
    "ResourceNotFound",
    "ServiceUnavailable",
    "TandemError",
    "truncate",
]

#: Longest container message copied into an error, so one bad answer cannot bloat every log line.
MAX_ORIGINAL_MESSAGE = 2048


class ApiError(TandemError):
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


class InvalidRequest(ApiError):
    code = "ValidationError"
    status = 400


def endpoint_not_found(name: str, account: str) -> InvalidRequest:
    """SageMaker's answer for an endpoint that does not exist: it names the account (the
    gateway's ``TANDEM_ACCOUNT``, the one in its ARNs)."""
    return InvalidRequest(f"Endpoint {name} of account {account} not found.")


class ModelError(ApiError):
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


class ModelNotReady(ApiError):
    code = "ModelNotReadyException"
    status = 429


class ResourceNotFound(ApiError):
    """Asked about a model, or another named thing, that does not exist."""

    code = "ResourceNotFound"
    status = 404


class InternalFailure(ApiError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(ApiError):
    code = "ServiceUnavailable"
    status = 503


def truncate(text: str, limit: int = MAX_ORIGINAL_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + "...(truncated)"
