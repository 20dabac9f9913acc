"""The models API: list what an endpoint holds (GET), evict one model (DELETE)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import InvalidRequest, NotFound
from gateway.live import LiveEndpoint
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.targets import validate_target
from gateway.serving.dispatch import Dispatcher
from gateway.serving.invocation import Invocations


def model_routes(invocations: Invocations, dispatcher: Dispatcher) -> list[Route]:
    def managers(request: Request) -> tuple[LiveEndpoint, list[ModelManager]]:
        endpoint = invocations.endpoint(request.path_params["name"])
        chosen = request.query_params.get("container")
        found = [
            manager
            for r in endpoint.runtimes
            for c in r.containers
            if (manager := dispatcher.manager(c)) is not None
            and (chosen is None or c.hostname == chosen)
        ]
        if not found:
            what = f"has no MultiModel container {chosen}" if chosen else "is not multi-model"
            raise InvalidRequest(f"Endpoint {endpoint.name} {what}.")
        return endpoint, found

    async def list_models(request: Request) -> Response:
        endpoint, found = managers(request)
        return JSONResponse(
            {"EndpointName": endpoint.name, "Containers": [m.describe() for m in found]}
        )

    async def evict_model(request: Request) -> Response:
        endpoint, found = managers(request)
        target = validate_target(request.path_params["target"])
        results = {m.container.hostname: await m.evict(target) for m in found}
        if not any(any(r.values()) for r in results.values()):
            raise NotFound(
                f"Model {target} is neither loaded nor cached in endpoint {endpoint.name}."
            )
        return JSONResponse(
            {"EndpointName": endpoint.name, "TargetModel": target, "Containers": results}
        )

    return [
        Route("/endpoints/{name}/models", list_models, methods=["GET"]),
        Route("/endpoints/{name}/models/{target:path}", evict_model, methods=["DELETE"]),
    ]
