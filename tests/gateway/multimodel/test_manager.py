"""The model manager's policy on its own: a fake container's model API stands in for the container.

The container is not under test here (its own tests load real models); what is, is what the
manager decides when the container answers: which model it unloads, and how often it retries.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.live import Instance
from gateway.metrics import GatewayMetrics
from gateway.multimodel.cache import DiskCache
from gateway.multimodel.describe import load_cost
from gateway.multimodel.manager import ModelManager
from gateway.multimodel.model_store import ModelStore
from gateway.multimodel.targets import container_name
from gateway.upstream import UpstreamResponse
from pipelines.spec import EndpointSpec
from tests.gateway.multimodel import archives
from tests.gateway.multimodel.conftest import GIB, FakeModelApi, make_manager


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


class CountingDeletes(FakeModelApi):
    """Unloads that answer only once the event loop has gone round a few times, counting how
    many are in flight together."""

    def __init__(self) -> None:
        super().__init__({})
        self.in_flight = self.most = 0

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        self.in_flight -= 1
        return await super().delete(path, timeout=timeout, max_body=max_body)


def test_the_models_that_leave_for_one_load_unload_side_by_side(tmp_path: Path) -> None:
    """A large model needs three small ones gone: their three unloads are in flight at once,
    not one round trip after another."""
    store = tmp_path / "store"
    for target in ("a.tar.gz", "b.tar.gz", "c.tar.gz"):
        archives.write_tar(store / target, {"model.joblib": b"m" * 100})
    archives.write_tar(store / "large.tar.gz", {"model.joblib": b"m" * 300})
    spec = EndpointSpec.model_validate(
        {
            "name": "houses",
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
    cache = DiskCache(tmp_path / "cache", limit=GIB, max_model_bytes=2**20)
    cache.reset()
    api = CountingDeletes()
    manager = ModelManager(
        container,
        store=ModelStore(str(store)),
        cache=cache,
        upstream=lambda: api,
        metrics=GatewayMetrics([endpoint]).models(endpoint, container),
        memory_limit=350,  # no process to measure: the models' sizes on disk count
    )

    async def use(target: str) -> None:
        manager.release(await manager.acquire(target, time.monotonic() + 30))

    async def scenario() -> None:
        for target in ("a.tar.gz", "b.tar.gz", "c.tar.gz", "a.tar.gz", "b.tar.gz", "c.tar.gz"):
            await use(target)
        await use("large.tar.gz")
        unloaded = {name for verb, name in api.calls if verb == "DELETE"}
        assert unloaded == {container_name(t) for t in ("a.tar.gz", "b.tar.gz", "c.tar.gz")}
        assert api.most == 3
        assert set(manager.loaded_models) == {"large.tar.gz"}
        await manager.close()

    asyncio.run(scenario())


def test_the_policy_weighs_the_containers_cpu_seconds_else_the_wall_time() -> None:
    """A busy machine stretches a load's wall time, not its CPU time: eviction weighs the
    container's ``loadCpuSeconds`` when it says it."""
    assert load_cost('{"status": "ok", "loadCpuSeconds": 0.004}', 0.05) == 0.004
    assert load_cost('{"status": "ok"}', 0.05) == 0.05
    assert load_cost('{"loadCpuSeconds": 0}', 0.05) == 0.05
    assert load_cost('{"loadCpuSeconds": "fast"}', 0.05) == 0.05
    assert load_cost("not json", 0.05) == 0.05
    assert load_cost("[1, 2]", 0.05) == 0.05


class GatedDeletes(FakeModelApi):
    """Unloads that answer only when ``gate`` is set, counting how many are in flight."""

    def __init__(self) -> None:
        super().__init__({})
        self.gate = asyncio.Event()
        self.in_flight = self.most = 0

    async def delete(self, path: str, *, timeout: float, max_body: int) -> UpstreamResponse:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1
        return await super().delete(path, timeout=timeout, max_body=max_body)


def test_a_load_plans_its_room_while_another_loads_unloads_are_under_way(tmp_path: Path) -> None:
    """Two loads that each need a model gone: the second one's unload is sent while the
    first one's is still under way (the lock is not held across the round trip), and neither
    load is sent to the container before the unloads its room counts on have ended."""
    targets = ("a.tar.gz", "b.tar.gz", "c.tar.gz", "d.tar.gz")
    api = GatedDeletes()
    manager = make_manager(tmp_path, targets, api=api).manager

    async def use(target: str) -> None:
        manager.release(await manager.acquire(target, time.monotonic() + 30))

    async def scenario() -> None:
        await use("a.tar.gz")
        await use("b.tar.gz")
        one = manager.loaded_models["a.tar.gz"].memory
        manager.memory_limit = 2 * one  # a and b fill it: c and d each need one gone
        both = asyncio.gather(use("c.tar.gz"), use("d.tar.gz"))
        for _ in range(200):
            if api.in_flight == 2:
                break
            await asyncio.sleep(0.01)
        assert api.most == 2, "the second unload waited for the first one's round trip"
        posted = [name for verb, name in api.calls if verb == "POST"]
        assert container_name("c.tar.gz") not in posted
        assert container_name("d.tar.gz") not in posted
        api.gate.set()
        await both
        assert set(manager.loaded_models) == {"c.tar.gz", "d.tar.gz"}
        await manager.close()

    asyncio.run(scenario())
