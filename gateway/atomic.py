"""Files written whole or not at all: a hidden ``.partial`` beside the target, then a rename.

A reader (or a restart after SIGKILL) sees the old file, or none, or the new one, never half of
it. Shared by what writes answers and records to a folder (async inference, data capture). And
SQLite transactions the same way (``transaction``), for the state database and the metric store.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

#: A path as given: its text or a ``Path`` (``publish`` answers by what it was given).
_P = TypeVar("_P", str, Path)


@contextmanager
def transaction(
    conn: sqlite3.Connection, lock: threading.Lock, *, write: bool = True
) -> Iterator[sqlite3.Connection]:
    """One transaction on ``conn`` under ``lock``: a write takes SQLite's write lock at BEGIN, a
    read sees one snapshot; any error rolls it back whole."""
    with lock:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before its rename: hidden, beside it, a fixed name (a retry
    after a crash overwrites the one a killed writer left)."""
    return path.with_name(f".{path.name}.partial")


def _partial(path: str) -> str:
    """``partial_path`` of a path's text: no ``Path`` objects on a per-answer path."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.partial")


def write_atomic(path: Path, data: bytes, *, sync_folder: bool = False) -> None:
    """``data`` at ``path``, flushed to disk before the rename; ``sync_folder`` also makes the
    rename itself durable (a power cut could otherwise undo it)."""
    write_partial(path, data, sync=True)
    os.replace(partial_path(path), path)
    if sync_folder:
        fsync_folder(path.parent)


def write_partial(path: str | Path, data: bytes, *, sync: bool) -> None:
    """``data`` in ``path``'s partial file (``publish`` renames it into place). Three system
    calls when the folder exists (its parents are made only when it does not)."""
    partial = _partial(os.fspath(path))
    try:
        fd = os.open(partial, _CREATE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(partial) or ".", exist_ok=True)
        fd = os.open(partial, _CREATE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def publish(paths: Iterable[_P]) -> dict[_P, OSError]:
    """Partial files written by ``write_partial(..., sync=False)`` made durable and renamed into
    place, whole or not at all: their data is flushed first (a few files an fsync each; more,
    one ``syncfs`` per file system on Linux, cheaper than an fsync per file), then each is
    renamed and each folder fsynced once. A path whose partial is gone and that exists was
    published already (a retried group) and is left alone. What could not be published, with
    why (a path with neither its partial nor itself: gone); the others are."""
    partials = {p: _partial(os.fspath(p)) for p in paths}
    try:
        _flush(list(partials.values()))
    except OSError as exc:
        exists = os.path.exists
        return {p: exc for p, part in partials.items() if exists(part) or not exists(p)}
    failed: dict[_P, OSError] = {}
    moved: list[_P] = []
    for path, partial in partials.items():
        try:
            os.replace(partial, path)
            moved.append(path)
        except FileNotFoundError:
            if not os.path.exists(path):
                failed[path] = FileNotFoundError(f"{path}: neither it nor its partial file exists")
        except OSError as exc:
            failed[path] = exc
    for folder in {os.path.dirname(os.fspath(p)) or "." for p in moved}:
        fsync_folder(folder)
    return failed


#: Files flushed one fsync each at most; more take one ``syncfs``, which also flushes whatever
#: else is dirty on the file system, so it is worth it only for a group of files.
FSYNC_EACH_UP_TO = 4


def _flush(files: list[str]) -> None:
    """Flush ``files`` (partial files; one that is gone is skipped: ``publish`` says why)."""
    syncfs = _syncfs() if len(files) > FSYNC_EACH_UP_TO else None
    if syncfs is not None:
        devices: dict[int, str] = {}
        for folder in {os.path.dirname(file) or "." for file in files}:
            with contextlib.suppress(FileNotFoundError):
                devices.setdefault(os.stat(folder).st_dev, folder)
        for folder in devices.values():
            fd = os.open(folder, os.O_RDONLY)
            try:
                if syncfs(fd) != 0:
                    raise OSError(ctypes.get_errno(), f"syncfs of {folder} failed")
            finally:
                os.close(fd)
        return
    for file in files:
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)`` (flush one file system), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


def fsync_folder(folder: str | Path) -> None:
    """Make the renames into ``folder`` durable (an fsync of the folder; ignored where the
    platform cannot)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
