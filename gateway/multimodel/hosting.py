"""Make a ``ModelManager`` for every MultiModel container of the endpoints an app serves."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from functools import partial

from gateway.folders import container_dir
from gateway.live import ContainerRuntime, Instance
from gateway.metrics import GatewayMetrics
from gateway.multimodel.cache import DiskCache
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.model_store import ModelStore
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream


def make_managers(
    endpoints: Iterable[Instance],
    settings: GatewaySettings,
    upstream: Callable[[ContainerRuntime], Upstream],
    metrics: GatewayMetrics,
) -> dict[ContainerRuntime, ModelManager]:
    """A manager (with an empty disk cache) per MultiModel container; the dispatcher keeps them."""
    managers: dict[ContainerRuntime, ModelManager] = {}
    for endpoint in endpoints:
        for container in endpoint.containers:
            if not container.multi_model:
                continue
            prefix = endpoint.spec.model_data_url(container.spec)
            limits = container.limits
            if prefix is None or limits is None:
                raise ValueError(
                    f"{endpoint.name}/{container.hostname}: a MultiModel container needs its "
                    "model_data prefix and its limits (build them with serving.live.build)"
                )
            folder = container_dir(settings.state_dir.resolve(), container) / "models"
            cache = DiskCache(
                folder, limit=limits.disk_cache, max_model_bytes=settings.max_model_bytes
            )
            cache.reset()
            managers[container] = ModelManager(
                container,
                store=ModelStore(prefix, s3_endpoint_url=settings.s3_endpoint_url),
                cache=cache,
                upstream=partial(upstream, container),
                metrics=metrics.models(endpoint, container),
                memory_limit=limits.memory,
                load_timeout=settings.model_load_timeout,
                eviction=settings.eviction_policy,
                max_loads=settings.model_loads or available_cpus(),
            )
    return managers


def available_cpus() -> int:
    """The CPUs this process may run on: the default bound on one container's loads at once."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


async def preload_all(managers: Iterable[ModelManager]) -> None:
    await asyncio.gather(*(m.preload() for m in managers))


async def close_all(managers: Iterable[ModelManager]) -> None:
    await asyncio.gather(*(m.close() for m in managers))
