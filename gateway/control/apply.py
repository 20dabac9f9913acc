"""A spec file applied through the API: what ``tandem serve spec.yaml`` and ``tandem deploy`` do.

The spec becomes a ``CreateModel`` per variant and a ``CreateEndpointConfig``
(``variants.config_parts``) named
after the endpoint plus a digest of their content, e.g. ``churn-3f2a9c1e``; then the endpoint is
created, or updated to that config if it serves another (a ``Failed`` endpoint is created again
on it). Applying the same spec again finds both
names taken by the same content and changes nothing, so a gateway restarted with its spec files
does not redeploy what already runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from gateway.control.endpoints import recreate_endpoint
from gateway.control.plane import ControlPlane
from gateway.control.translate import SOURCE_TAG
from gateway.control.variants import config_parts
from gateway.errors import ControlError
from gateway.state import EndpointStatus
from pipelines.spec import EndpointSpec

#: One control-plane call: ``ControlPlane.call``, or a client's (answer, or the call's error).
Call = Callable[[str, Mapping[str, Any]], dict[str, Any]]
#: Runs a ``Failed`` endpoint again on a config: ``(endpoint, config)``.
Recreate = Callable[[str, str], None]
#: Room left for ``-`` and the digest in a 63-character name.
_STEM = 63 - 9


class Applied(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def versioned(spec: EndpointSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``config_parts`` with content-named models (one per distinct variant model) and config."""
    by_variant, config = config_parts(spec)
    stem = spec.name[:_STEM].rstrip("-")
    models: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for variant, model in by_variant.items():
        if spec.source is not None:
            # A ``command`` runs in the spec's folder, as it does when served from the file.
            model["Tags"] = [{"Key": SOURCE_TAG, "Value": str(spec.source)}]
        name = f"{stem}-{_digest(model)}"
        model["ModelName"] = names[variant] = name
        models.setdefault(name, model)
    for variant in [*config["ProductionVariants"], *config.get("ShadowProductionVariants", [])]:
        variant["ModelName"] = names[variant["ModelName"]]
    config["EndpointConfigName"] = f"{stem}-{_digest(config)}"
    return list(models.values()), config


def apply_spec(plane: ControlPlane, spec: EndpointSpec) -> Applied:
    """Create or update ``spec``'s endpoint through the control plane (raises its errors)."""

    def recreate(endpoint: str, config: str) -> None:
        plane.notify(recreate_endpoint(plane.context, endpoint, config))

    return apply_with(plane.call, spec, recreate)


def apply_with(call: Call, spec: EndpointSpec, recreate: Recreate) -> Applied:
    """``apply_spec`` through any ``call(operation, params)``: the plane's own, or a client's of a
    running gateway (``tandem deploy``), so both name and change things the same way.

    ``recreate(endpoint, config)`` runs a ``Failed`` endpoint again on ``config``: SageMaker
    cannot update a failed endpoint, but a spec says what should run, so run it (in process the
    store does it in place; over the API it is a delete, then a create).
    """
    models, config = versioned(spec)
    for model in models:
        if describe(call, "DescribeModel", {"ModelName": model["ModelName"]}) is None:
            call("CreateModel", model)
    if (
        describe(
            call, "DescribeEndpointConfig", {"EndpointConfigName": config["EndpointConfigName"]}
        )
        is None
    ):
        call("CreateEndpointConfig", config)
    endpoint = describe(call, "DescribeEndpoint", {"EndpointName": spec.name})
    target = {"EndpointName": spec.name, "EndpointConfigName": config["EndpointConfigName"]}
    if endpoint is None:
        call("CreateEndpoint", target)
        return Applied.CREATED
    if endpoint["EndpointStatus"] == EndpointStatus.FAILED.value:
        recreate(spec.name, config["EndpointConfigName"])
        return Applied.CREATED
    if str(endpoint["EndpointConfigName"]).lower() == config["EndpointConfigName"].lower():
        return Applied.UNCHANGED
    call("UpdateEndpoint", target)
    return Applied.UPDATED


def describe(call: Call, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """A ``Describe*`` answer, or ``None`` when there is no such resource."""
    try:
        return call(operation, params)
    except (ControlError, ClientError) as exc:
        if not_found(exc):
            return None
        raise


def not_found(exc: ControlError | ClientError) -> bool:
    """Whether an error is SageMaker's answer for a name that does not exist: a
    ``ValidationException`` whose message starts "Could not find" (SageMaker has no other way to
    say it, and its own SDK checks it so), from the plane or from botocore."""
    if isinstance(exc, ControlError):
        code, message = exc.code, exc.message
    else:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
    return code == "ValidationException" and message.startswith("Could not find")


def _digest(request: dict[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]
