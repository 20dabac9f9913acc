"""Files written whole or not at all: a hidden ``.partial`` beside the target, then a rename.

A reader (or a restart after SIGKILL) sees the old file, or none, or the new one, never half of
it. Shared by what writes answers and records to a folder (async inference, data capture). And
SQLite transactions the same way (``transaction``), for the state database and the metric store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def write_atomic(path: Path, data: bytes, *, sync_folder: bool = False) -> None:
    """``data`` at ``path``, flushed to disk before the rename; ``sync_folder`` also makes the
    rename itself durable (a power cut could otherwise undo it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    if sync_folder:
        fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
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
