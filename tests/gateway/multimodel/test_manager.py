"""The model manager's policy on its own: a fake container's model API stands in for the container.

The container is not under test here (its own tests load real models); what is, is what the
manager decides when the container answers: which model it unloads, and how often it retries.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.multimodel.targets import container_name
from tests.gateway.multimodel.conftest import make_manager


def test_a_507_evicts_the_least_recently_used_unpinned_model_and_retries_once(
    tmp_path: Path,
) -> None:
    # A limit far above the models' sizes: only the container's 507 makes room here.
    managed = make_manager(
        tmp_path,
        ("pinned.tar.gz", "a.tar.gz", "b.tar.gz", "c.tar.gz"),
        scripts={"c.tar.gz": [507, 200]},
        preload=["pinned.tar.gz"],
        eviction="lru",
    )
    manager, api, metrics = managed.manager, managed.api, managed.metrics
    labels = {"endpoint": "houses", "variant": "AllTraffic", "container": "multi"}

    def evictions(reason: str) -> float:
        value = metrics.registry.get_sample_value(
            "tandem_model_evictions_total", {**labels, "reason": reason}
        )
        return value or 0.0

    async def use(target: str) -> None:
        manager.release(await manager.acquire(target, time.monotonic() + 30))

    async def scenario() -> None:
        await manager.preload()
        for target in ("a.tar.gz", "b.tar.gz", "a.tar.gz"):  # b is now the least recently used
            await use(target)
        before, calls = evictions("memory"), len(api.calls)
        await use("c.tar.gz")
        assert api.calls[calls:] == [
            ("POST", container_name("c.tar.gz")),
            ("DELETE", container_name("b.tar.gz")),
            ("POST", container_name("c.tar.gz")),
        ]
        assert evictions("memory") == before + 1
        models = manager.describe()["Models"]
        assert isinstance(models, list)
        loaded = {m["TargetModel"] for m in models if m["Loaded"]}
        assert loaded == {"pinned.tar.gz", "a.tar.gz", "c.tar.gz"}
        await manager.close()

    asyncio.run(scenario())
