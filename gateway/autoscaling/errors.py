"""Application Auto Scaling's errors, with the codes botocore's ``application-autoscaling`` model
declares, so boto3 raises ``client.exceptions.ValidationException`` and the like.

The route renders each as JSON 1.1 (``__type`` and ``Message``); all are the caller's fault but
``InternalServiceException``.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.errors import ApiError


class AutoScalingError(ApiError):
    code: ClassVar[str] = "ValidationException"
    status: ClassVar[int] = 400


class ValidationException(AutoScalingError):
    code = "ValidationException"


class ObjectNotFoundException(AutoScalingError):
    code = "ObjectNotFoundException"


class LimitExceededException(AutoScalingError):
    code = "LimitExceededException"


class ConcurrentUpdateException(AutoScalingError):
    code = "ConcurrentUpdateException"


class InvalidNextTokenException(AutoScalingError):
    code = "InvalidNextTokenException"


class InternalServiceException(AutoScalingError):
    code = "InternalServiceException"
    status = 500
