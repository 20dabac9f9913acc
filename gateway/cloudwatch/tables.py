"""Tables of their own in the state database: one connection behind a lock, their own schema.

The alarms (``alarms.py``) and Application Auto Scaling's objects (``gateway.autoscaling``) each
keep a schema number in a meta table of their own, applied like ``gateway.state.schema``'s
migrations, so they evolve apart from the control plane's (and from each other's) numbers.
WAL, and ``synchronous=FULL`` by default: what they store was acknowledged to a caller. The
metric store keeps its datapoints here too, with ``NORMAL`` (a metric can lose its last flush).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from gateway.atomic import transaction
from pipelines.errors import TandemError


class TablesTooNew(TandemError):
    """The state folder was used by a newer Tandem, whose tables this one cannot read."""


def connect(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """The state database's connection as every store of its own opens it (WAL, autocommit so
    transactions are explicit); ``synchronous`` is the store's: what a power cut may cost it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class Tables:
    """Safe to share between threads; every ``tx()`` is one transaction. ``prepare`` runs on the
    connection before the migrations (SQL functions they use); ``too_new`` is what a newer
    schema raises."""

    def __init__(
        self,
        path: Path,
        *,
        meta: str,
        migrations: list[tuple[int, list[str]]],
        synchronous: str = "FULL",
        prepare: Callable[[sqlite3.Connection], None] | None = None,
        too_new: type[TablesTooNew] = TablesTooNew,
    ) -> None:
        self.path = Path(path)
        self._too_new = too_new
        self._lock = threading.Lock()
        self._conn = connect(self.path, synchronous=synchronous)
        try:
            if prepare is not None:
                prepare(self._conn)
            self.version = self._migrate(meta, migrations)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def tx(self, *, write: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction: a write takes the write lock at BEGIN; a read sees one snapshot."""
        return transaction(self._conn, self._lock, write=write)

    def _migrate(self, meta: str, migrations: list[tuple[int, list[str]]]) -> int:
        with self.tx() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value)")
            row = conn.execute(f"SELECT value FROM {meta} WHERE key = 'schema'").fetchone()
            current = int(row[0]) if row else 0
            latest = migrations[-1][0]
            if current > latest:
                raise self._too_new(
                    f"{self.path}: the tables of {meta} are at version {current}, newer than "
                    f"this Tandem knows ({latest}); upgrade Tandem or use another state folder"
                )
            for number, statements in migrations:
                if number > current:
                    for statement in statements:
                        conn.execute(statement)
                    current = number
            conn.execute(
                f"INSERT OR REPLACE INTO {meta} (key, value) VALUES ('schema', ?)", (current,)
            )
        return current
