"""The control plane's errors, in SageMaker's JSON 1.1 shape, so ``boto3`` raises the same codes.

Every class is an ``ApiError`` (code and status, raised by the core, rendered by the route), with
a body of ``{"__type": code, "message": ...}``: botocore reads the code from the
``x-amzn-ErrorType`` header or ``__type`` and the message from ``message``, and
``client.exceptions.<Code>`` matches for the codes SageMaker's model declares (``ResourceInUse``,
``ResourceLimitExceeded``, ``ResourceNotFound``); the others surface as ``ClientError`` with
``Error.Code`` set. As in AWS's JSON protocols, every client error is HTTP 400.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.errors import ApiError

__all__ = [
    "AccessDenied",
    "ControlError",
    "ControlInternal",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFoundError",
    "SerializationFailure",
    "UnknownOperation",
    "ValidationException",
]

#: The media type of every control-plane request and answer.
CONTENT_TYPE = "application/x-amz-json-1.1"


class ControlError(ApiError):
    code: ClassVar[str] = "ValidationException"
    status: ClassVar[int] = 400

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.fields}


class ValidationException(ControlError):
    """Bad input, or a name that does not exist (SageMaker answers both this way)."""

    code = "ValidationException"


class ResourceNotFoundError(ControlError):
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
