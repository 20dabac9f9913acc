"""Tables of their own in the state database: one connection behind a lock, their own schema.

The alarms (``alarms.py``) and Application Auto Scaling's objects (``gateway.autoscaling``) each
keep a schema number in a meta table of their own, applied like ``gateway.state.schema``'s
migrations, so they evolve apart from the control plane's (and from each other's) numbers.
WAL, and ``synchronous=FULL``: what they store was acknowledged to a caller.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import TandemError


class TablesTooNew(TandemError):
    """The state folder was used by a newer Tandem, whose tables this one cannot read."""


class Tables:
    """Safe to share between threads; every ``tx()`` is one transaction."""

    def __init__(self, path: Path, *, meta: str, migrations: list[tuple[int, list[str]]]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        try:
            self.version = self._migrate(meta, migrations)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _migrate(self, meta: str, migrations: list[tuple[int, list[str]]]) -> int:
        with self.tx() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value)")
            row = conn.execute(f"SELECT value FROM {meta} WHERE key = 'schema'").fetchone()
            current = int(row[0]) if row else 0
            latest = migrations[-1][0]
            if current > latest:
                raise TablesTooNew(
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
