"""Scalable targets, policies, scheduled actions and activities in the state database.

One table, ``autoscaling_objects``: a row per object, keyed by its kind (``target``,
``policy``, ``scheduled``, ``activity``), the target's three names and the object's own name,
holding the object as Describe* returns it (``body``, JSON) and what the evaluator remembers of
it (``state``: cooldown times, a schedule's last run). Its own schema number
(``autoscaling_meta``, ``gateway.cloudwatch.tables``), so it evolves apart from the control
plane's migrations. A trigger on the control plane's ``endpoints`` table removes an
endpoint's objects in the transaction that removes the endpoint. One transaction per change.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gateway.cloudwatch.tables import Tables

_V1 = [
    """CREATE TABLE autoscaling_objects (
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,
        resource   TEXT NOT NULL,
        dimension  TEXT NOT NULL,
        name       TEXT NOT NULL,
        endpoint   TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        body       TEXT NOT NULL,
        state      TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (kind, namespace, resource, dimension, name)
    )""",
    "CREATE INDEX autoscaling_by_endpoint ON autoscaling_objects (endpoint)",
]
#: Needs the control plane's tables (the state store is opened first).
_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS autoscaling_endpoint_gone AFTER DELETE ON endpoints BEGIN "
    "DELETE FROM autoscaling_objects WHERE endpoint = lower(OLD.name); END"
)
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1)]
#: The kinds a deregistration removes with its target (activities stay, as on AWS).
OWNED = ("target", "policy", "scheduled")

Key = tuple[str, str, str]  # namespace, resource id, dimension
Row = tuple[dict[str, Any], dict[str, Any]]  # body, state


class ScalingStore(Tables):
    """The table; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, meta="autoscaling_meta", migrations=MIGRATIONS)
        with self.tx() as conn:
            has_endpoints = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'endpoints'"
            ).fetchone()
            if has_endpoints:
                conn.execute(_TRIGGER)
            (self._seq,) = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM autoscaling_objects"
            ).fetchone()

    # ---- writes ---------------------------------------------------------------------------------

    def put(
        self, kind: str, key: Key, name: str, endpoint: str, body: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Insert or replace one object (its state kept unless ``state`` is given)."""
        with self.tx() as conn:
            self._seq = max(self._seq, int(time.time() * 1000)) + 1
            conn.execute(
                "INSERT INTO autoscaling_objects "
                "(kind, namespace, resource, dimension, name, endpoint, seq, body, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, namespace, resource, dimension, name) DO UPDATE SET "
                "body = excluded.body, state = CASE WHEN ? THEN excluded.state ELSE state END",
                (kind, *key, name, endpoint.lower(), self._seq, _dump(body), _dump(state or {}),
                 state is not None),
            )  # fmt: skip

    def set_state(self, kind: str, key: Key, name: str, state: dict[str, Any]) -> None:
        with self.tx() as conn:
            conn.execute(
                "UPDATE autoscaling_objects SET state = ? WHERE kind = ? AND namespace = ? AND "
                "resource = ? AND dimension = ? AND name = ?",
                (_dump(state), kind, *key, name),
            )

    def delete(self, kinds: tuple[str, ...], key: Key, name: str | None = None) -> int:
        """Remove the objects of ``kinds`` under ``key`` (only ``name`` if given): how many."""
        marks = ", ".join("?" for _ in kinds)
        sql = (
            f"DELETE FROM autoscaling_objects WHERE kind IN ({marks}) AND namespace = ? "
            "AND resource = ? AND dimension = ?"
        )
        args: list[str] = [*kinds, *key]
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        with self.tx() as conn:
            return conn.execute(sql, args).rowcount

    def prune(self, kind: str, key: Key, keep: int) -> None:
        """Keep only the newest ``keep`` objects of ``kind`` under ``key``."""
        where = "kind = ? AND namespace = ? AND resource = ? AND dimension = ?"
        with self.tx() as conn:
            conn.execute(
                f"DELETE FROM autoscaling_objects WHERE {where} AND seq NOT IN "
                f"(SELECT seq FROM autoscaling_objects WHERE {where} ORDER BY seq DESC LIMIT ?)",
                (kind, *key, kind, *key, keep),
            )

    # ---- reads ----------------------------------------------------------------------------------

    def get(self, kind: str, key: Key, name: str = "") -> Row | None:
        found = self.list(kind, key[0], resource=key[1], dimension=key[2], names=[name])
        return found[0] if found else None

    def list(
        self, kind: str, namespace: str | None = None, *, resource: str | None = None,
        dimension: str | None = None, names: list[str] | None = None, newest_first: bool = False,
    ) -> list[Row]:  # fmt: skip
        """The objects of ``kind`` that match every filter given, oldest (or newest) first."""
        where, args = ["kind = ?"], [kind]
        for column, value in (("namespace", namespace), ("resource", resource),
                              ("dimension", dimension)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if names is not None:
            where.append(f"name IN ({', '.join('?' for _ in names)})")
            args += names
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT body, state FROM autoscaling_objects WHERE {' AND '.join(where)} "
        with self.tx(write=False) as conn:
            rows = conn.execute(sql + f"ORDER BY seq {order}", args).fetchall()
        return [(json.loads(b), json.loads(s)) for b, s in rows]


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
