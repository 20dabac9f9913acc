"""Effective memory and disk limits of MultiModel containers: the spec's, else a fair share.

Both the supervisor (which passes the memory limit to the container) and the app (whose model
managers enforce both) call ``resolve_limits``; it fills in only what is unset, either order works.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from gateway.runtime import EndpointRuntime

#: Share of the machine's memory, and of the state folder's free disk, that all MultiModel
#: containers together get by default (split evenly between them).
DEFAULT_SHARE = 0.5


def machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def free_disk(folder: Path) -> int:
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def resolve_limits(endpoints: Iterable[EndpointRuntime], state_dir: Path) -> None:
    containers = [c for e in endpoints for c in e.containers if c.multi_model]
    if not containers:
        return
    share = DEFAULT_SHARE / len(containers)
    for container in containers:
        if container.memory_limit is None:
            container.memory_limit = container.spec.memory_limit or int(machine_memory() * share)
        if container.disk_cache_limit is None:
            container.disk_cache_limit = container.spec.disk_cache_limit or int(
                free_disk(state_dir) * share
            )
