"""The disk cache of one MultiModel container: unpacked models, least recently used first out.

Each model is unpacked into a temporary folder and renamed into place, so a failed download or a
refused archive never leaves a half-written model. Removal renames the folder away first, so a
fresh copy of the same model can land while the old one is still being deleted. Index changes
happen on the event loop; the blocking work (``fill``, ``purge``) runs in worker threads.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.artifacts import ArtifactError, scratch_file, unpack
from gateway.multimodel.model_store import BadArtifact, ModelStore
from gateway.multimodel.targets import container_name

TRASH = ".trash-"


@dataclass(eq=False)
class CacheEntry:
    target: str
    path: Path
    size: int
    last_used: float


class DiskCache:
    def __init__(self, root: Path, *, limit: int, max_model_bytes: int) -> None:
        self.root = root
        self.limit = limit
        self.max_model_bytes = max_model_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        #: The entries' sizes added up, kept as they change: read on every load.
        self._total = 0

    def reset(self) -> None:
        """Start empty: what an earlier gateway left is not trusted (it may be half-deleted).

        The folder itself stays: a container may already have it mounted (the docker backend),
        and a mount keeps pointing at a deleted folder, not at a new one of the same name.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        for child in self.root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    @property
    def total(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[CacheEntry]:
        return list(self._entries.values())

    def get(self, target: str) -> CacheEntry | None:
        entry = self._entries.get(target)
        if entry is not None:
            entry.last_used = time.time()
            self._entries.move_to_end(target)
        return entry

    def fill(self, target: str, store: ModelStore) -> CacheEntry:
        """Blocking: fetch and unpack ``target`` into its folder; ``add`` the result afterwards."""
        path = self.root / container_name(target)
        try:
            if store.local:
                size = unpack(
                    store.local_path(target), path, label=target, max_bytes=self.max_model_bytes
                )
            else:
                size = self._download_and_unpack(target, store, path)
        except ArtifactError as exc:
            raise BadArtifact(exc.reason) from exc
        return CacheEntry(target, path, size, time.time())

    def _download_and_unpack(self, target: str, store: ModelStore, path: Path) -> int:
        with scratch_file(self.root, target) as archive:
            store.download(target, archive)
            return unpack(archive, path, label=target, max_bytes=self.max_model_bytes)

    def add(self, entry: CacheEntry) -> None:
        old = self._entries.get(entry.target)
        self._total += entry.size - (old.size if old is not None else 0)
        self._entries[entry.target] = entry
        self._entries.move_to_end(entry.target)

    def remove(self, target: str) -> Path | None:
        """Drop ``target`` from the index and move its folder aside; ``purge`` deletes that."""
        entry = self._entries.pop(target, None)
        if entry is None:
            return None
        self._total -= entry.size
        trash = self.root / f"{TRASH}{uuid.uuid4().hex}"
        try:
            os.rename(entry.path, trash)
        except FileNotFoundError:
            return None
        return trash

    def shrink(self, protected: Iterable[str]) -> list[tuple[str, Path]]:
        """Drop least recently used entries not in ``protected`` until the total fits the limit."""
        removed: list[tuple[str, Path]] = []
        total = self.total
        if total <= self.limit:
            return removed
        keep = set(protected)
        for entry in list(self._entries.values()):
            if total <= self.limit:
                break
            if entry.target in keep:
                continue
            total -= entry.size
            trash = self.remove(entry.target)
            if trash is not None:
                removed.append((entry.target, trash))
        return removed


def purge(paths: Iterable[Path]) -> None:
    """Blocking: delete folders that ``remove`` or ``shrink`` moved aside."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
