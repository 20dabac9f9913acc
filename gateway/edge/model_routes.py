"""The models API: list what an endpoint holds (GET), evict one model (DELETE)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ValidationError
from gateway.models.errors import ModelNotFound
from gateway.models.manager import ModelManager
from gateway.models.targets import validate_target
from gateway.runtime import EndpointRuntime


def model_routes(endpoint_or_error: Callable[[str], EndpointRuntime]) -> list[Route]:
    def managers(request: Request) -> tuple[EndpointRuntime, list[ModelManager]]:
        endpoint = endpoint_or_error(request.path_params["name"])
        chosen = request.query_params.get("container")
        found = [
            c.models
            for c in endpoint.containers
            if c.models is not None and (chosen is None or c.hostname == chosen)
        ]
        if not found:
            what = f"has no MultiModel container {chosen}" if chosen else "is not multi-model"
            raise ValidationError(f"Endpoint {endpoint.name} {what}.")
        return endpoint, found

    async def list_models(request: Request) -> Response:
        endpoint, found = managers(request)
        return _json({"EndpointName": endpoint.name, "Containers": [m.describe() for m in found]})

    async def evict_model(request: Request) -> Response:
        endpoint, found = managers(request)
        target = validate_target(request.path_params["target"])
        results = {m.container.hostname: await m.evict(target) for m in found}
        if not any(any(r.values()) for r in results.values()):
            raise ModelNotFound(
                f"Model {target} is neither loaded nor cached in endpoint {endpoint.name}."
            )
        return _json({"EndpointName": endpoint.name, "TargetModel": target, "Containers": results})

    return [
        Route("/endpoints/{name}/models", list_models, methods=["GET"]),
        Route("/endpoints/{name}/models/{target:path}", evict_model, methods=["DELETE"]),
    ]


def _json(data: Any) -> Response:
    return Response(json.dumps(data), media_type="application/json")
