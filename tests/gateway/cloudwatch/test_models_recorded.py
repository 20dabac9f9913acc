"""A MultiModel container's manager reports to CloudWatch: cache lookups, loads and unloads.

A real ``ModelManager`` over a real model store and disk cache (the container's model API is
scripted), its ``GatewayMetrics`` handed the metric store's recorder as ``DataPlane`` does; what
boto3's ``cloudwatch`` client reads back counts what the manager did.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.live import Instance
from gateway.metrics import GatewayMetrics
from gateway.multimodel.cache import DiskCache
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.model_store import ModelStore
from pipelines.spec import EndpointSpec
from tests.gateway.cloudwatch.conftest import World
from tests.gateway.multimodel import archives
from tests.gateway.multimodel.test_manager import FakeModelApi

GIB = 2**30


def test_lookups_loads_and_unloads_reach_cloudwatch(world: World, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for target in ("a.tar.gz", "b.tar.gz"):
        archives.write_tar(store / target, {"model.joblib": b"m" * 100})
    spec = EndpointSpec.model_validate(
        {
            "name": "ep",
            "containers": [
                {
                    "hostname": "multi",
                    "command": ["unused"],
                    "mode": "MultiModel",
                    "model_data": str(store),
                }
            ],
        }
    )
    endpoint = Instance.from_spec(spec)
    (container,) = endpoint.containers
    metrics = GatewayMetrics([endpoint])
    metrics.cloudwatch = world.recorder
    cache = DiskCache(tmp_path / "cache", limit=GIB, max_model_bytes=2**20)
    cache.reset()
    api = FakeModelApi({})
    manager = ModelManager(
        container,
        store=ModelStore(str(store)),
        cache=cache,
        upstream=lambda: api,
        metrics=metrics.models(endpoint, container),
        memory_limit=GIB,
    )

    async def scenario() -> None:
        for target in ("a.tar.gz", "b.tar.gz", "a.tar.gz"):  # two misses (loads), one hit
            manager.release(await manager.acquire(target, time.monotonic() + 30))
        await manager.close()

    asyncio.run(scenario())
    (hits,) = world.stats("ModelCacheHit", "Sum", "SampleCount")
    assert (hits["Sum"], hits["SampleCount"]) == (1.0, 3.0)
    (loads,) = world.stats("ModelLoadingTime", "SampleCount")
    assert loads["SampleCount"] == 2.0
    (downloads,) = world.stats("ModelDownloadingTime", "SampleCount")
    assert downloads["SampleCount"] == 2.0
