"""A MultiModel container's manager reports to CloudWatch: cache lookups, loads and unloads.

A real ``ModelManager`` over a real model store and disk cache (the container's model API is
scripted), its ``GatewayMetrics`` handed the metric store's recorder as ``DataPlane`` does; what
boto3's ``cloudwatch`` client reads back counts what the manager did.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.gateway.cloudwatch.conftest import World
from tests.gateway.multimodel.conftest import make_manager


def test_lookups_loads_and_unloads_reach_cloudwatch(world: World, tmp_path: Path) -> None:
    manager = make_manager(
        tmp_path, ("a.tar.gz", "b.tar.gz"), endpoint="ep", cloudwatch=world.recorder
    ).manager

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
