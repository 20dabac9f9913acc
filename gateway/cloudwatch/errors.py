"""CloudWatch's errors, with the codes botocore's ``cloudwatch`` model declares.

Each is an ``ApiError`` (code and status); ``gateway.cloudwatch.wire`` renders it in the shape of
the protocol the request came in: ``__type`` plus the ``x-amzn-query-error`` header for CBOR and
JSON (the model is ``awsQueryCompatible``, so botocore maps the header's code to
``client.exceptions.InvalidParameterValueException`` and the like), ``<ErrorResponse>`` for query.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.errors import ApiError


class CloudWatchError(ApiError):
    """Base: ``code`` is the query code, ``shape`` the model's exception shape name."""

    code: ClassVar[str] = "InvalidParameterValue"
    status: ClassVar[int] = 400
    shape: ClassVar[str] = "InvalidParameterValueException"
    #: ``Sender`` (the caller's fault) or ``Receiver``.
    fault: ClassVar[str] = "Sender"


class InvalidParameterValue(CloudWatchError):
    code = "InvalidParameterValue"
    shape = "InvalidParameterValueException"


class InvalidParameterCombination(CloudWatchError):
    code = "InvalidParameterCombination"
    shape = "InvalidParameterCombinationException"


class MissingParameter(CloudWatchError):
    code = "MissingParameter"
    shape = "MissingRequiredParameterException"


class InvalidNextToken(CloudWatchError):
    code = "InvalidNextToken"
    shape = "InvalidNextToken"


class LimitExceeded(CloudWatchError):
    code = "LimitExceededException"
    shape = "LimitExceededException"


class InvalidAction(CloudWatchError):
    """An operation this gateway does not serve (the query protocol's code for it)."""

    code = "InvalidAction"
    shape = "InvalidAction"


class SerializationError(CloudWatchError):
    """A body that is not the protocol's (not CBOR, not JSON, a member of the wrong type)."""

    code = "SerializationException"
    shape = "SerializationException"


class InternalServiceFault(CloudWatchError):
    code = "InternalServiceError"
    status = 500
    shape = "InternalServiceFault"
    fault = "Receiver"
