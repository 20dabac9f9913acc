"""Datapoints in the state database: tables of their own, one transaction per flush.

The metric store opens its own connection to the state folder's database (WAL, like
``gateway.state``), so a flush never waits on the control plane's lock in Python, only briefly
on SQLite's write lock. ``synchronous=NORMAL``: a power cut may lose the last flush, which a
metric can afford and an acknowledged ``CreateEndpoint`` could not. Its tables carry their own
schema number (``metric_meta``), applied like ``gateway.state.schema``'s migrations, so the two
evolve apart. Rows: ``metric_series`` (namespace, name, dimensions as canonical JSON; when a
datapoint last came) and ``metric_points`` (one per series, bucket, resolution and unit, with
count, sum, min, max and the histogram). A flush merges into existing rows (an upsert), so two
flushes, or a restart, within one minute add up. Size: rows older than the retention go at each
flush, and beyond ``max_points`` rows the oldest go first.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.cloudwatch.recorder import Dims, Rollup
from gateway.cloudwatch.sketch import Stats, merge_hist
from gateway.cloudwatch.tables import Tables, TablesTooNew

_V1 = [
    """CREATE TABLE metric_series (
        id         INTEGER PRIMARY KEY,
        namespace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        dims       TEXT NOT NULL,
        last       REAL NOT NULL,
        UNIQUE (namespace, name, dims)
    )""",
    """CREATE TABLE metric_points (
        series  INTEGER NOT NULL,
        ts      INTEGER NOT NULL,
        res     INTEGER NOT NULL,
        unit    TEXT NOT NULL,
        count   REAL NOT NULL,
        sum     REAL NOT NULL,
        min     REAL NOT NULL,
        max     REAL NOT NULL,
        hist    TEXT NOT NULL,
        PRIMARY KEY (series, ts, res, unit)
    ) WITHOUT ROWID""",
    "CREATE INDEX metric_points_by_ts ON metric_points (ts)",
]
#: (version, statements), in order. Append only.
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1)]

_UPSERT = (
    "INSERT INTO metric_points (series, ts, res, unit, count, sum, min, max, hist) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series, ts, res, unit) DO UPDATE SET "
    "count = count + excluded.count, sum = sum + excluded.sum, min = min(min, excluded.min), "
    "max = max(max, excluded.max), hist = merge_hist(hist, excluded.hist)"
)


class MetricTablesTooNew(TablesTooNew):
    """The state folder was used by a newer Tandem, whose metric tables this one cannot read."""


def _prepare(conn: sqlite3.Connection) -> None:
    """The upsert merges histograms in SQL."""
    conn.create_function("merge_hist", 2, merge_hist, deterministic=True)


@dataclass(frozen=True, slots=True)
class Series:
    id: int
    namespace: str
    name: str
    dims: Dims
    last: float


@dataclass(frozen=True, slots=True)
class Point:
    ts: int
    res: int
    unit: str
    stats: Stats


class MetricStore:
    """The tables; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path, *, max_points: int) -> None:
        self.max_points = max_points
        self._tables = Tables(
            path,
            meta="metric_meta",
            migrations=MIGRATIONS,
            synchronous="NORMAL",
            prepare=_prepare,
            too_new=MetricTablesTooNew,
        )
        self.path = self._tables.path
        self.version = self._tables.version
        self._tx = self._tables.tx

    def close(self) -> None:
        self._tables.close()

    # ---- writes ---------------------------------------------------------------------------------

    def write(self, rollup: Rollup, *, prune_before: float | None = None) -> None:
        """Merge ``rollup`` in and prune, in one transaction."""
        with self._tx() as conn:
            ids: dict[tuple[str, str, Dims], int] = {}
            for (namespace, name, d, unit, res, ts), stats in rollup.items():
                series = ids.get((namespace, name, d))
                if series is None:
                    series = ids[(namespace, name, d)] = _series_id(conn, namespace, name, d)
                conn.execute(
                    "UPDATE metric_series SET last = max(last, ?) WHERE id = ?", (ts, series)
                )
                conn.execute(
                    _UPSERT,
                    (series, ts, res, unit, stats.count, stats.total, _finite(stats.minimum),
                     _finite(stats.maximum), stats.hist_json()),
                )  # fmt: skip
            if prune_before is not None:
                self._prune(conn, prune_before)

    def _prune(self, conn: sqlite3.Connection, before: float) -> None:
        conn.execute("DELETE FROM metric_points WHERE ts < ?", (int(before),))
        (count,) = conn.execute("SELECT count(*) FROM metric_points").fetchone()
        if count > self.max_points:
            (cut,) = conn.execute(
                "SELECT ts FROM metric_points ORDER BY ts LIMIT 1 OFFSET ?",
                (count - self.max_points,),
            ).fetchone()
            conn.execute("DELETE FROM metric_points WHERE ts < ?", (cut,))
        conn.execute(
            "DELETE FROM metric_series WHERE NOT EXISTS "
            "(SELECT 1 FROM metric_points p WHERE p.series = metric_series.id)"
        )

    # ---- reads ----------------------------------------------------------------------------------

    def series(self, namespace: str | None = None, name: str | None = None) -> list[Series]:
        """Every series (of ``namespace``, named ``name``), in a stable order."""
        where, args = [], []
        for column, value in (("namespace", namespace), ("name", name)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM metric_series"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._tx(write=False) as conn:
            rows = conn.execute(sql + " ORDER BY namespace, name, dims", args).fetchall()
        return [
            Series(r[0], r[1], r[2], tuple(tuple(p) for p in json.loads(r[3])), r[4]) for r in rows
        ]

    def find(self, namespace: str, name: str, d: Dims) -> int | None:
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT id FROM metric_series WHERE namespace = ? AND name = ? AND dims = ?",
                (namespace, name, _dims_text(d)),
            ).fetchone()
        return None if row is None else int(row[0])

    def points(self, series: int, start: int, end: int) -> list[Point]:
        """The series' datapoints whose bucket starts in [start, end), oldest first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT ts, res, unit, count, sum, min, max, hist FROM metric_points "
                "WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts",
                (series, start, end),
            ).fetchall()
        return [Point(r[0], r[1], r[2], Stats.from_row(*r[3:])) for r in rows]

    def point_count(self) -> int:
        with self._tx(write=False) as conn:
            return int(conn.execute("SELECT count(*) FROM metric_points").fetchone()[0])


def _dims_text(d: Dims) -> str:
    return json.dumps([list(p) for p in d], separators=(",", ":"))


def _series_id(conn: sqlite3.Connection, namespace: str, name: str, d: Dims) -> int:
    text = _dims_text(d)
    conn.execute(
        "INSERT OR IGNORE INTO metric_series (namespace, name, dims, last) VALUES (?, ?, ?, 0)",
        (namespace, name, text),
    )
    row = conn.execute(
        "SELECT id FROM metric_series WHERE namespace = ? AND name = ? AND dims = ?",
        (namespace, name, text),
    ).fetchone()
    return int(row[0])


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
