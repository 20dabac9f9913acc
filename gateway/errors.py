"""The gateway's errors, all in one map: one root for all of them, one base for those a client
sees. Factories that make an error from what failed live apart (``gateway.serving.failures``,
``gateway.multimodel.errors``, ``gateway.control.context``); the classes are all here::

    TandemError (pipelines.errors: the lowest package, so a spec error shares it)
    ├── SpecError, StartError, BackendError, ...   raised on purpose, printed by the CLI
    └── ApiError                     the wire base: a SageMaker code and an HTTP status
        ├── InvalidRequest           ValidationError 400       (runtime API)
        ├── ModelError               ModelError 424: a container answered non-2xx or too late
        ├── ModelNotReady            ModelNotReadyException 429
        ├── Throttling               ThrottlingException 400: held past TANDEM_HELD_WAIT
        ├── NotFound                 ResourceNotFound 404      (models API)
        ├── InternalFailure          InternalFailure 500
        ├── ServiceUnavailable       ServiceUnavailable 503
        ├── MissingAuthentication    MissingAuthenticationTokenException 401   (edge/auth.py)
        ├── UnrecognizedClient       UnrecognizedClientException 403
        ├── IncompleteSignature      IncompleteSignatureException 400
        ├── InvalidSignature         InvalidSignatureException 403
        └── ControlError             the control plane's JSON 1.1 shape, 400 unless said
            ├── ValidationException
            ├── ResourceNotFound     a transform job that does not exist
            ├── ResourceInUse, ResourceLimitExceeded, SerializationFailure
            ├── AccessDenied         AccessDeniedException: the control plane is admin's
            ├── UnknownOperation     UnknownOperationException
            └── ControlInternal      InternalFailure 500

``TandemError`` is the root of every error raised on purpose; the CLI catches it once.
``ApiError`` is the base of the errors in SageMaker's wire shapes: each carries its code and
status, and ``gateway.edge.errors`` renders them (the control plane's with the JSON 1.1 body of
``ControlError.body``), so that ``boto3`` raises the matching exception class. Anything else
becomes an ``InternalFailure`` whose details stay in the log. This module imports no web
framework: the core raises these, the edges render them.

The control plane's errors: botocore reads the code from the ``x-amzn-ErrorType`` header or
``__type`` and the message from ``message``, and ``client.exceptions.<Code>`` matches for the
codes SageMaker's model declares (``ResourceInUse``, ``ResourceLimitExceeded``,
``ResourceNotFound``); the others surface as ``ClientError`` with ``Error.Code`` set. As in
AWS's JSON protocols, every control-plane client error is HTTP 400.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipelines.errors import TandemError

__all__ = [
    "CONTROL_CONTENT_TYPE",
    "AccessDenied",
    "ApiError",
    "ControlError",
    "ControlInternal",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidRequest",
    "InvalidSignature",
    "MissingAuthentication",
    "ModelError",
    "ModelNotReady",
    "NotFound",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "SerializationFailure",
    "ServiceUnavailable",
    "TandemError",
    "Throttling",
    "UnknownOperation",
    "UnrecognizedClient",
    "ValidationException",
    "truncate",
]

#: The media type of every control-plane request and answer.
CONTROL_CONTENT_TYPE = "application/x-amz-json-1.1"
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


class Throttling(ApiError):
    """AWS's common throttling error (HTTP 400, as its docs list it; botocore retries it): a
    variant at zero that got no instance within TANDEM_HELD_WAIT, or held too many requests."""

    code = "ThrottlingException"
    status = 400


class NotFound(ApiError):
    """Asked about a model, or another named thing, that does not exist (runtime API)."""

    code = "ResourceNotFound"
    status = 404


class InternalFailure(ApiError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(ApiError):
    code = "ServiceUnavailable"
    status = 503


# ---- the edge's authentication (gateway/edge/auth.py) ----


class MissingAuthentication(ApiError):
    code = "MissingAuthenticationTokenException"
    status = 401


class UnrecognizedClient(ApiError):
    code = "UnrecognizedClientException"
    status = 403


class IncompleteSignature(ApiError):
    code = "IncompleteSignatureException"
    status = 400


class InvalidSignature(ApiError):
    code = "InvalidSignatureException"
    status = 403


# ---- the control plane (JSON 1.1 at POST /) ----


class ControlError(ApiError):
    code: ClassVar[str] = "ValidationException"
    status: ClassVar[int] = 400

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.fields}


class ValidationException(ControlError):
    """Bad input, or a name that does not exist (SageMaker answers both this way)."""

    code = "ValidationException"


class ResourceNotFound(ControlError):
    """A transform job that does not exist (SageMaker's ``ResourceNotFound``)."""

    code = "ResourceNotFound"


class ResourceInUse(ControlError):
    """The resource is needed by another: a model or config an endpoint uses, a job name taken."""

    code = "ResourceInUse"


class ResourceLimitExceeded(ControlError):
    code = "ResourceLimitExceeded"


class AccessDenied(ControlError):
    """The caller's key may not use the control plane (it has the ``invoke`` role only)."""

    code = "AccessDeniedException"


class UnknownOperation(ControlError):
    code = "UnknownOperationException"


class SerializationFailure(ControlError):
    """The request is not JSON 1.1: not JSON, not an object, a member of the wrong type."""

    code = "SerializationException"


class ControlInternal(ControlError):
    """A bug: the message says only that; the log has the details."""

    code = "InternalFailure"
    status = 500


def truncate(text: str, limit: int = MAX_ORIGINAL_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + "...(truncated)"
