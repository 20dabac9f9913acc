"""Input checks shared by the operations: botocore's model first (types, required members,
enums, ranges), then what Tandem scales (SageMaker variants) and the resource id's form."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape, StructureShape

from gateway.autoscaling.errors import InvalidNextTokenException, ValidationException
from gateway.cloudwatch import wire
from gateway.cloudwatch.errors import CloudWatchError

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
#: An inference component's copies: ``inference-component/<name>``.
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
COMPONENT_PREFIX = "inference-component/"
_RESOURCE = re.compile(r"^endpoint/([a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/variant/([^/]{1,63})$")
_COMPONENT = re.compile(r"^inference-component/([a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)$")


@cache
def model() -> ServiceModel:
    """botocore's ``application-autoscaling`` model, loaded once."""
    return botocore.session.get_session().get_service_model("application-autoscaling")


def checked(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` typed, with required members, enums and bounds as the model has them."""
    shape = model().operation_model(operation).input_shape
    try:
        value = wire.typed(shape, dict(params), "")
    except CloudWatchError as exc:
        raise ValidationException(exc.message) from None
    _walk(shape, value, "")
    return dict(value or {})


def _walk(shape: Shape, value: Any, path: str) -> None:
    name = path or "request"
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for member in shape.required_members:
            if value.get(member) is None:
                raise ValidationException(f"1 validation error detected: {_at(path, member)} "
                                           "must not be null.")  # fmt: skip
        for key, item in value.items():
            _walk(shape.members[key], item, _at(path, key))
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value, 1):
            _walk(shape.member, item, f"{path}.{i}")
    elif getattr(shape, "enum", None) and value not in shape.enum:
        raise ValidationException(
            f"1 validation error detected: Value {str(value)[:100]!r} at {name!r} failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]."
        )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        low = shape.metadata.get("min")
        if low is not None and value < low:
            raise ValidationException(f"{name} must be at least {low} (got {value}).")
    elif isinstance(value, str):
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
        if len(value) < low or (high is not None and len(value) > high):
            raise ValidationException(f"{name} must have a length within {low}-{high}.")


def _at(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def target_key(params: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, resource id, dimension) once checked to be a SageMaker variant's."""
    namespace = params["ServiceNamespace"]
    if namespace != NAMESPACE:
        raise ValidationException(
            f"ServiceNamespace {namespace!r} is not one Tandem scales: it scales "
            f"{NAMESPACE!r} (SageMaker endpoint variants) only."
        )
    dimension = params["ScalableDimension"]
    if dimension not in (DIMENSION, COMPONENT_DIMENSION):
        raise ValidationException(
            f"ScalableDimension {dimension!r} is not one Tandem scales: it scales {DIMENSION} "
            f"and {COMPONENT_DIMENSION}."
        )
    resource = params["ResourceId"]
    if dimension == COMPONENT_DIMENSION and not _COMPONENT.match(resource):
        raise ValidationException(
            f"ResourceId {resource[:200]!r} is not inference-component/<inference component "
            f"name> (the resource of {COMPONENT_DIMENSION})."
        )
    if dimension == DIMENSION and not _RESOURCE.match(resource):
        raise ValidationException(
            f"ResourceId {resource[:200]!r} is not endpoint/<endpoint name>/variant/<variant name>."
        )
    return namespace, resource, dimension


def endpoint_of(resource: str) -> tuple[str, str]:
    """(endpoint, variant) of a variant's resource id; an inference component's is (its
    resource id, its name): ``ScalingApi.describe_endpoint`` describes it like a variant."""
    match = _RESOURCE.match(resource)
    if match is None:
        found = _COMPONENT.match(resource)
        assert found is not None
        return resource, found[1]
    return match[1], match[2]


def is_component(resource: str) -> bool:
    return resource.startswith(COMPONENT_PREFIX)


def optional_key(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Describe*'s optional dimension filter, checked like a key's."""
    if params["ServiceNamespace"] != NAMESPACE:
        target_key({**params, "ResourceId": "endpoint/x/variant/x", "ScalableDimension": DIMENSION})
    dimension = params.get("ScalableDimension")
    if dimension is not None and dimension not in (DIMENSION, COMPONENT_DIMENSION):
        target_key({**params, "ResourceId": "endpoint/x/variant/x"})
    return params["ServiceNamespace"], dimension


def page(
    items: list[dict[str, Any]], params: Mapping[str, Any], member: str, limit: int
) -> dict[str, Any]:
    """One page of ``items`` under ``member``, with a NextToken when more remain."""
    size = int(params.get("MaxResults") or limit)
    if not 1 <= size <= limit:
        raise ValidationException(f"MaxResults must be within 1-{limit} (got {size}).")
    start = 0
    if params.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidNextTokenException("NextToken is not one this gateway gave.") from None
    out: dict[str, Any] = {member: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return out
