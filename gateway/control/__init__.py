"""SageMaker's control plane: models, endpoint configs, endpoints and transform jobs over the API.

``plane.ControlPlane`` is the core (``call(operation, params) -> dict``), over the state database
(``gateway.state``), with hooks to the running side (``EndpointRunner``, ``JobRunner``);
``route.control_route`` serves it at ``POST /`` in AWS's JSON 1.1 protocol. The operations live in
``models.py``, ``endpoints.py`` and ``transform.py``; input is checked against botocore's model of
SageMaker (``shapes.py``, loaded on first use so that start-up stays fast); ``translate.py`` is
the one mapping between SageMaker's objects and Tandem's endpoint spec.
"""

from gateway.control.context import DEFAULT_ACCOUNT, DEFAULT_REGION
from gateway.control.plane import (
    ComponentRunner,
    ControlPlane,
    EndpointPlan,
    EndpointRunner,
    JobPlan,
    JobRunner,
)
from gateway.control.route import control_app, control_route, service_route
from gateway.errors import (
    CONTROL_CONTENT_TYPE,
    AccessDenied,
    ControlError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    SerializationFailure,
    UnknownOperation,
    ValidationException,
)

__all__ = [
    "CONTROL_CONTENT_TYPE",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "AccessDenied",
    "ComponentRunner",
    "ControlError",
    "ControlPlane",
    "EndpointPlan",
    "EndpointRunner",
    "JobPlan",
    "JobRunner",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "SerializationFailure",
    "UnknownOperation",
    "ValidationException",
    "control_app",
    "control_route",
    "service_route",
]
