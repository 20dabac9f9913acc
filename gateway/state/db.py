"""One SQLite connection for the state database, and the one way to run a transaction on it.

Durability: WAL journal with ``synchronous=FULL``. WAL alone already survives a killed process
(a commit is in the WAL before ``COMMIT`` returns, and a reader never sees half of one); ``FULL``
also fsyncs the WAL at every commit, so an acknowledged ``CreateEndpoint`` survives a power cut
or a kernel crash too (``NORMAL`` could lose the last commits there). Control-plane writes come
at human rate, so the fsync costs nothing that matters; a job's progress is the one frequent
write, and a runner reports it about once a second.

Threads: one connection, in autocommit mode, behind a ``threading.Lock``; every change is an
explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` whose checks and writes see the same snapshot, so a
check ("is this config in use?") cannot go stale before its write. A call takes a millisecond or
two (the fsync): short enough for the event loop, and ``asyncio.to_thread`` where even that
pause matters.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Self

from gateway.atomic import transaction
from gateway.state.records import StateCorrupt
from gateway.state.schema import migrate

#: The database's file name in the state folder.
FILENAME = "control.db"


def key(name: str) -> str:
    """The unique form of a name: SageMaker names are unique regardless of case."""
    return name.lower()


def dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def exists(conn: sqlite3.Connection, table: str, name: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} WHERE key = ?", (key(name),)).fetchone() is not None


class Database:
    """The connection, its pragmas and migrations; subclasses add the resources."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._conn.row_factory = sqlite3.Row
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateCorrupt(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            #: The schema version (the last migration applied).
            self.version = migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            raise StateCorrupt(f"{self.path}: not a usable state database: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self, *, write: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction: a write takes the write lock at BEGIN; a read sees one snapshot."""
        return transaction(self._conn, self._lock, write=write)

    def now(self) -> float:
        """Epoch seconds to the microsecond: what a time survives a trip through boto3 as, so
        that a ``CreationTimeAfter`` given a resource's own ``CreationTime`` excludes it."""
        return round(self._clock(), 6)

    def check(self) -> list[str]:
        """What SQLite finds wrong (integrity, foreign keys); ``[]`` for a sound database."""
        with self._tx(write=False) as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            problems = [p for p in problems if p != "ok"]
            for row in conn.execute("PRAGMA foreign_key_check"):
                problems.append(f"foreign key: {tuple(row)}")
        return problems
