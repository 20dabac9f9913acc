"""Wire a ``ModelManager`` to every MultiModel container of the endpoints an app serves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from gateway.metrics import GatewayMetrics
from gateway.models.cache import DiskCache
from gateway.models.limits import resolve_limits
from gateway.models.manager import ModelManager
from gateway.models.store import ModelStore
from gateway.runtime import ContainerRuntime, EndpointRuntime
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream


def attach_managers(
    endpoints: list[EndpointRuntime],
    settings: GatewaySettings,
    upstream: Callable[[ContainerRuntime], Upstream],
    metrics: GatewayMetrics,
) -> list[ModelManager]:
    """Give each MultiModel container its manager (``container.models``); an empty disk cache."""
    resolve_limits(endpoints, settings.state_dir)
    managers = []
    for endpoint in endpoints:
        for container in endpoint.containers:
            if not container.multi_model:
                continue
            prefix = endpoint.spec.model_data_url(container.spec)
            assert prefix is not None and container.memory_limit is not None
            assert container.disk_cache_limit is not None
            folder = settings.state_dir.resolve() / endpoint.name / container.hostname / "models"
            cache = DiskCache(
                folder, limit=container.disk_cache_limit, max_model_bytes=settings.max_model_bytes
            )
            cache.reset()
            container.models = ModelManager(
                container,
                store=ModelStore(prefix, s3_endpoint_url=settings.s3_endpoint_url),
                cache=cache,
                upstream=partial(upstream, container),
                metrics=metrics.models(endpoint, container),
                memory_limit=container.memory_limit,
                load_timeout=settings.model_load_timeout,
            )
            managers.append(container.models)
    return managers


async def preload_all(managers: list[ModelManager]) -> None:
    await asyncio.gather(*(m.preload() for m in managers))


async def close_all(managers: list[ModelManager]) -> None:
    await asyncio.gather(*(m.close() for m in managers))
