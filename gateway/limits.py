"""Memory and disk limits of MultiModel containers: the spec's, else a fair share of the machine.

Resolved once, when the live endpoints are built (``gateway.live.build``): the supervisor
passes the memory limit to the container, and the model manager enforces both.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.spec import EndpointSpec, Mode

#: Share of the machine's memory, and of the state folder's free disk, that all MultiModel
#: containers together get by default (split evenly between them).
DEFAULT_SHARE = 0.5


@dataclass(frozen=True)
class Limits:
    memory: int
    disk_cache: int


def machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def free_disk(folder: Path) -> int:
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def fair_limits(
    units: Iterable[tuple[str, EndpointSpec]], state_dir: Path
) -> dict[str, dict[str, Limits]]:
    """Key -> container hostname -> its limits, for every MultiModel container of ``units``.

    A unit is one running copy of a single-variant spec (an instance), under its own key.
    """
    multi = [
        (key, hostname, container)
        for key, spec in units
        for hostname, container in zip(spec.hostnames, spec.containers, strict=True)
        if container.mode is Mode.MULTI_MODEL
    ]
    if not multi:
        return {}
    share = DEFAULT_SHARE / len(multi)
    limits: dict[str, dict[str, Limits]] = {}
    for endpoint, hostname, container in multi:
        memory = container.memory_limit or int(machine_memory() * share)
        disk = container.disk_cache_limit or int(free_disk(state_dir) * share)
        limits.setdefault(endpoint, {})[hostname] = Limits(memory=memory, disk_cache=disk)
    return limits
