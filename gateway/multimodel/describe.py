"""The parts of a model manager that need none of its state: the record of a loaded model, its
description, answers' fields."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from gateway.multimodel.cache import DiskCache
from gateway.multimodel.model_store import ModelStore
from gateway.multimodel.targets import container_name


@dataclass(eq=False)
class LoadedModel:
    target: str
    name: str
    #: Resident bytes this load added to the container (measured), or its size on disk.
    memory: int
    loaded_at: float
    last_used: float
    pinned: bool
    in_use: int = 0
    #: Seconds its load took (``POST /models``), the cost of evicting it.
    load_seconds: float = 0.0
    #: Requests that took it; 0 while the requests that waited for its load have not yet.
    uses: int = 0

    @property
    def invoke_path(self) -> str:
        return f"/models/{quote(self.name, safe='')}/invoke"


class Described(Protocol):
    """What a description reads of a model manager (``gateway.multimodel.manager``)."""

    container: Any
    store: ModelStore
    cache: DiskCache
    pinned: frozenset[str]
    unload_after_use: bool
    memory_limit: int

    @property
    def loaded_models(self) -> Mapping[str, Any]: ...

    def is_loading(self, target: str) -> bool: ...

    def memory_used(self) -> int | None: ...


def describe(manager: Described) -> dict[str, object]:
    """The models API's view of one container: what is loaded, cached, pinned, in flight."""
    disk = {e.target: e for e in manager.cache.entries()}
    models = []
    for target in sorted(set(disk) | set(manager.loaded_models) | manager.pinned):
        entry, cached = manager.loaded_models.get(target), disk.get(target)
        last = max(entry.last_used if entry else 0.0, cached.last_used if cached else 0.0)
        models.append(
            {
                "TargetModel": target,
                "ContainerModelName": container_name(target),
                "Loaded": entry is not None,
                "Loading": manager.is_loading(target),
                "Pinned": target in manager.pinned,
                "MemoryBytes": entry.memory if entry else None,
                "DiskBytes": cached.size if cached else None,
                "LastUsed": _iso(last) if last else None,
                "InFlight": entry.in_use if entry else 0,
            }
        )
    return {
        "ContainerHostname": manager.container.hostname,
        "ModelData": manager.store.prefix,
        "ModelCache": "Disabled" if manager.unload_after_use else "Enabled",
        "MemoryLimitBytes": manager.memory_limit,
        "MemoryUsedBytes": manager.memory_used(),
        "DiskCacheLimitBytes": manager.cache.limit,
        "DiskCacheBytes": manager.cache.total,
        "LoadedModelCount": len(manager.loaded_models),
        "Models": models,
    }


def measured(message: str, fallback: int) -> int:
    """``memoryBytes`` of the router's load answer: what the model added to its worker. A 0 is
    no measure (the allocator reused memory freed before): ``fallback`` then, so that no loaded
    model counts as free, for eviction and for the usage ledger's memory x time alike."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        value = json.loads(message).get("memoryBytes")
        if isinstance(value, int) and value > 0:
            return value
    return fallback


def load_cost(message: str, seconds: float) -> float:
    """What evicting a model costs when it comes back: the CPU seconds its load took in the
    container (``loadCpuSeconds``), which a busy machine does not stretch as it stretches the
    wall time; ``seconds`` (the wall time) from a container that does not say."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        value = json.loads(message).get("loadCpuSeconds")
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return seconds


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
