"""Where things live in the state folder: one folder per kind, so no name reaches another kind's.

```
<state>/control.db                             the state database (and .lock, while served)
<state>/layout                                 this layout's version, written by ``migrate``
<state>/endpoints/<endpoint>/<instance>/<hostname>/   a container's SAGEMAKER_BASE_DIR
<state>/jobs/endpoints/<job>/<job>/<hostname>/        a transform job's (``jobs/`` is the jobs'
                                                      own state folder, laid out the same way)
```

``<instance>`` is the endpoint's name for its one instance, ``<name>.1`` for the other side of a
blue/green update, ``<name>[.1]_<variant>_<n>`` for each instance of a multi-variant endpoint.
Endpoint, variant and job names allow neither ``/`` nor ``.`` nor ``_``, so an instance folder
is its endpoint's alone and a job's folders never meet an endpoint's, whatever the names.
Asynchronous requests and data capture keep nothing here (the queue is in ``control.db``;
answers and records go where their config says). Deleting an endpoint removes its folder once its
containers stopped; a finished job keeps only its containers' logs.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Protocol

from gateway.atomic import write_atomic

log = logging.getLogger("tandem.state")

ENDPOINTS = "endpoints"
JOBS = "jobs"
LAYOUT_FILE = "layout"
LAYOUT_VERSION = "2"
#: A container folder of the layout before kinds had folders: what ``migrate`` moves.
_OLD_INSTANCE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*(\.1)?(_[a-zA-Z0-9-]+_\d+)?")
_CONTAINER_FILES = frozenset({"model", "model.stamp", "container.log", "models"})


class Container(Protocol):
    """What names a container's folder (``gateway.live.ContainerRuntime`` has it)."""

    @property
    def endpoint(self) -> str: ...

    @property
    def deployment(self) -> str: ...

    @property
    def hostname(self) -> str: ...


def endpoint_dir(state_dir: Path, endpoint: str) -> Path:
    """Everything one endpoint keeps on disk: its instances' container folders."""
    return state_dir / ENDPOINTS / endpoint


def container_dir(state_dir: Path, container: Container) -> Path:
    """A container's own folder (its SAGEMAKER_BASE_DIR: model copy, log, model cache)."""
    deployment = container.deployment or container.endpoint
    return endpoint_dir(state_dir, container.endpoint) / deployment / container.hostname


def remove_endpoint(state_dir: Path, endpoint: str) -> None:
    """Forget a deleted endpoint's folder (call once none of its containers runs)."""
    folder = endpoint_dir(state_dir, endpoint)
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        log.warning("could not remove all of %s", folder)


def prune_endpoints(state_dir: Path, keep: set[str]) -> list[str]:
    """Remove the folders of endpoints the state no longer holds (deleted before this layout,
    or by a gateway that died between the two steps of a delete); the names removed. Call at
    start, before anything runs; ``keep`` is every endpoint's name."""
    root = state_dir / ENDPOINTS
    wanted = {name.lower() for name in keep}
    gone = [p for p in root.iterdir() if p.name.lower() not in wanted] if root.is_dir() else []
    for folder in gone:
        remove_endpoint(state_dir, folder.name)
    return sorted(p.name for p in gone)


def migrate(state_dir: Path) -> list[str]:
    """Move the container folders of the older flat layout (``<state>/<instance>/``, and
    ``<state>/jobs/<job>/``) to their kind's folder, once; the folders moved.

    Only folders that hold container folders (a model copy, a stamp, a log) move, so nothing
    else an operator keeps in the state folder is touched.
    """
    marker = state_dir / LAYOUT_FILE
    if not state_dir.is_dir() or _read(marker) == LAYOUT_VERSION:
        return []
    moved = _move_instances(state_dir, state_dir / ENDPOINTS, skip={ENDPOINTS, JOBS})
    jobs = state_dir / JOBS
    if jobs.is_dir():
        moved += [f"{JOBS}/{n}" for n in _move_instances(jobs, jobs / ENDPOINTS, skip={ENDPOINTS})]
    write_atomic(marker, LAYOUT_VERSION.encode())
    return moved


def _move_instances(parent: Path, kind_dir: Path, *, skip: set[str]) -> list[str]:
    moved = []
    for entry in sorted(parent.iterdir()):
        if entry.name in skip or not _OLD_INSTANCE.fullmatch(entry.name):
            continue
        if not entry.is_dir() or entry.is_symlink() or not _holds_containers(entry):
            continue
        endpoint = re.split(r"[._]", entry.name, maxsplit=1)[0]
        target = kind_dir / endpoint / entry.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        entry.rename(target)
        moved.append(entry.name)
    return moved


def _holds_containers(folder: Path) -> bool:
    children = list(folder.iterdir())
    return bool(children) and all(
        c.is_dir() and any((c / name).exists() for name in _CONTAINER_FILES) for c in children
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
