"""The ledger's table in the state folder's database: one row per hour and group, added to.

Its own connection (WAL, like the metric store's), behind a lock; a write is one transaction
(``gateway.atomic.transaction``) that adds the flush's rows to what is there (an upsert) and
drops the hours past retention.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.atomic import transaction
from gateway.cloudwatch.tables import connect
from gateway.usage.ledger import COLUMNS, RowKey, Rows

_KEYS = ("hour", "endpoint", "variant", "component", "model")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage_hourly ("
    + ", ".join(f"{k} {'INTEGER' if k == 'hour' else 'TEXT'} NOT NULL" for k in _KEYS)
    + ", "
    + ", ".join(f"{c} REAL NOT NULL DEFAULT 0" for c in COLUMNS)
    + f", PRIMARY KEY ({', '.join(_KEYS)}))"
)
_UPSERT = (
    f"INSERT INTO usage_hourly ({', '.join(_KEYS + COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(_KEYS) + len(COLUMNS)))}) "
    f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in COLUMNS)
)
_SELECT = (
    f"SELECT {', '.join(_KEYS + COLUMNS)} FROM usage_hourly "
    "WHERE hour >= ? AND hour < ? ORDER BY hour, endpoint, variant, component, model"
)


class UsageStore:
    """The ``usage_hourly`` table; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path, synchronous="NORMAL")
        self._conn.execute(_SCHEMA)

    def write(self, rows: Rows, *, prune_before: float | None = None) -> None:
        """Add ``rows`` and drop hours that ended before ``prune_before``: one transaction."""
        params = [(*key, *values) for key, values in rows.items()]
        with transaction(self._conn, self._lock) as conn:
            conn.executemany(_UPSERT, params)
            if prune_before is not None:
                conn.execute("DELETE FROM usage_hourly WHERE hour + 3600 <= ?", (prune_before,))

    def read(self, since: float, until: float) -> Rows:
        """The rows of the hours that start in ``[since rounded down to its hour, until)``."""
        start = int(since // 3600 * 3600)
        with self._lock:
            found = self._conn.execute(_SELECT, (start, until)).fetchall()
        out: Rows = {}
        for row in found:
            key: RowKey = (int(row[0]), row[1], row[2], row[3], row[4])
            out[key] = [float(v) for v in row[5:]]
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
