"""InvokeEndpointAsync's durable queue: accepted requests in the state database, taken in order.

A request is a row from the moment it is accepted (the 202 is sent after the commit) until it
has ended in exactly one output or failure object. ``Queued`` -> ``Running`` (claimed by a
worker, ``attempts`` counted) -> ``Completed`` | ``Failed``. A gateway killed while a request
runs leaves it ``Running``; ``requeue_running`` puts it back at its place in the line at the
next start, and its ``attempts`` tells the worker to look for an object written before the kill
(``gateway.asynchronous.worker``). Every group of changes is one transaction (``apply``: the
gateway gathers the requests accepted and ended meanwhile into one commit, ``gateway.asynchronous
.commits``), committed before any of them is answered.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.state.db import Database, dump

#: Expired requests claimed at once, at most: each is failed, one task and one row in memory each.
EXPIRED_BATCH = 100


class AsyncStatus(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(frozen=True)
class QueuedInvocation:
    """One accepted request, as the queue holds it."""

    seq: int
    inference_id: str
    endpoint: str
    status: AsyncStatus
    created: float
    expires: float
    timeout: float
    output_location: str
    failure_location: str
    input_location: str | None = None
    body: bytes | None = None
    attempts: int = 0
    failure_reason: str | None = None
    #: The invocation's headers: ContentType, Accept, CustomAttributes ...
    request: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backlog:
    """What one endpoint has in the queue: the scaling signals SageMaker publishes."""

    size: int
    oldest: float | None


@dataclass(frozen=True)
class Enqueue:
    """A request accepted: a new ``Queued`` row."""

    inference_id: str
    endpoint: str
    ttl: float
    timeout: float
    output_location: str
    failure_location: str
    input_location: str | None = None
    body: bytes | None = None
    request: dict[str, Any] = field(default_factory=dict)
    #: Taken by a worker as it is accepted (its endpoint had room and nothing waiting): the
    #: row is ``Running`` from the start, claimed once, with no claim of its own.
    running: bool = False


@dataclass(frozen=True)
class Finish:
    """A request ended in its object: ``Running`` -> ``status`` (a finished row stays so)."""

    seq: int
    status: AsyncStatus
    reason: str | None = None


@dataclass(frozen=True)
class Claim:
    """The workers' look at the queue (``claim_work``), in the group's transaction: no
    transaction, fsync and thread of its own per claim, and rows accepted in the same group
    can be taken at once."""

    free: Mapping[str, int]
    expired: int


@dataclass(frozen=True)
class Claimed:
    """What a ``Claim`` took: expired requests (without their bodies), and work per endpoint."""

    expired: list[QueuedInvocation]
    taken: list[QueuedInvocation]


Change = Enqueue | Finish | Claim


class AsyncQueue(Database):
    """The ``async_invocations`` table (mixed into ``StateStore``)."""

    def enqueue(
        self,
        *,
        inference_id: str,
        endpoint: str,
        ttl: float,
        timeout: float,
        output_location: str,
        failure_location: str,
        input_location: str | None = None,
        body: bytes | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> QueuedInvocation:
        change = Enqueue(
            inference_id=inference_id,
            endpoint=endpoint,
            ttl=ttl,
            timeout=timeout,
            output_location=output_location,
            failure_location=failure_location,
            input_location=input_location,
            body=body,
            request=dict(request or {}),
        )
        row = self.apply([change])[0]
        assert isinstance(row, QueuedInvocation)
        return row

    def apply(self, changes: Sequence[Change]) -> list[QueuedInvocation | Claimed | None]:
        """A group of changes in one transaction (group commit): all of them or none are
        durable when it returns, so none is answered before all are. Per change, in order: the
        row an ``Enqueue`` made, None for a ``Finish``, what a ``Claim`` took (claims come
        last, so they see the rows the group accepted)."""
        now = self.now()
        with self._tx() as conn:
            inserted = iter(_insert(conn, [c for c in changes if isinstance(c, Enqueue)], now))
            _finish(conn, [c for c in changes if isinstance(c, Finish)], now)
            claimed = iter([_claim_work(conn, c, now) for c in changes if isinstance(c, Claim)])
        return [
            next(inserted)
            if isinstance(c, Enqueue)
            else next(claimed)
            if isinstance(c, Claim)
            else None
            for c in changes
        ]

    def get_invocation(self, seq: int) -> QueuedInvocation | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM async_invocations WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else _row(row)

    def queued_endpoints(self) -> list[str]:
        """Endpoints with requests waiting, the one with the oldest first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT endpoint, MIN(seq) AS first FROM async_invocations "
                "WHERE status = 'Queued' GROUP BY endpoint ORDER BY first"
            ).fetchall()
        return [str(r["endpoint"]) for r in rows]

    def claim(self, endpoint: str, limit: int) -> list[QueuedInvocation]:
        """The oldest ``limit`` queued requests of ``endpoint``, now ``Running``."""
        if limit <= 0:
            return []
        return self._claim("endpoint = ?", endpoint, limit, body=True)

    def claim_expired(self, limit: int = EXPIRED_BATCH) -> list[QueuedInvocation]:
        """The oldest ``limit`` queued requests past their TTL, of any endpoint (live or not),
        now ``Running``, without their inline bodies: an expired request is failed, never run,
        so a large expiring backlog is taken a batch at a time and never loaded whole."""
        if limit <= 0:
            return []
        return self._claim("expires < ?", self.now(), limit, body=False)

    def claim_work(
        self, free: Mapping[str, int], expired: int
    ) -> tuple[list[QueuedInvocation], list[QueuedInvocation]]:
        """What the workers take at one look, in one transaction: up to ``expired`` requests
        past their TTL (``claim_expired``), then up to ``free[endpoint]`` of each endpoint with
        requests waiting, the one with the oldest first (``claim``). The workers send the same
        ``Claim`` through their group commit instead."""
        claimed = self.apply([Claim(free, expired)])[0]
        assert isinstance(claimed, Claimed)
        return claimed.expired, claimed.taken

    def _claim(
        self, where: str, value: object, limit: int, *, body: bool
    ) -> list[QueuedInvocation]:
        """The oldest ``limit`` queued rows matching ``where``, set ``Running`` in one
        transaction (``where`` is one of this module's own conditions, never user text)."""
        now = self.now()
        with self._tx() as conn:
            return _claim(conn, where, value, limit, now, body=body)

    def finish(self, seq: int, status: AsyncStatus, reason: str | None = None) -> None:
        """The request ended (its object is written): it leaves the backlog."""
        self.apply([Finish(seq, status, reason)])

    def release(self, *seqs: int) -> None:
        """Claimed requests go back in line, at their places (their endpoint could not take
        them)."""
        with self._tx() as conn:
            for start in range(0, len(seqs), 900):
                chunk = seqs[start : start + 900]
                conn.execute(
                    "UPDATE async_invocations SET status = 'Queued' WHERE status = 'Running' "
                    f"AND seq IN ({','.join('?' * len(chunk))})",
                    chunk,
                )

    def requeue_running(self) -> int:
        """Requests a killed gateway left ``Running`` go back in line (at the next start)."""
        with self._tx() as conn:
            return conn.execute(
                "UPDATE async_invocations SET status = 'Queued' WHERE status = 'Running'"
            ).rowcount

    def backlog(self) -> dict[str, Backlog]:
        """Per endpoint: requests queued or running, and when the oldest was accepted."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT endpoint, COUNT(*) AS size, MIN(created) AS oldest "
                "FROM async_invocations WHERE status IN ('Queued', 'Running') GROUP BY endpoint"
            ).fetchall()
        return {str(r["endpoint"]): Backlog(int(r["size"]), r["oldest"]) for r in rows}

    def invocations(self, status: AsyncStatus | None = None) -> list[QueuedInvocation]:
        """Every request (in ``status``) in order: for tests and ``tandem`` tooling."""
        with self._tx(write=False) as conn:
            if status is None:
                rows = conn.execute("SELECT * FROM async_invocations ORDER BY seq").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM async_invocations WHERE status = ? ORDER BY seq",
                    (status.value,),
                ).fetchall()
        return [_row(r) for r in rows]

    def prune_finished(self, before: float) -> int:
        """Forget requests that ended before ``before``: their objects are the record."""
        with self._tx() as conn:
            return conn.execute(
                "DELETE FROM async_invocations WHERE status IN ('Completed', 'Failed') "
                "AND ended < ?",
                (before,),
            ).rowcount


def _claim_work(conn: sqlite3.Connection, claim: Claim, now: float) -> Claimed:
    expired = claim.expired
    old = _claim(conn, "expires < ?", now, expired, now, body=False) if expired > 0 else []
    if not any(n > 0 for n in claim.free.values()):
        return Claimed(old, [])
    rows = conn.execute(
        "SELECT endpoint, MIN(seq) AS first FROM async_invocations "
        "WHERE status = 'Queued' GROUP BY endpoint ORDER BY first"
    ).fetchall()
    taken: list[QueuedInvocation] = []
    for row in rows:
        limit = claim.free.get(str(row["endpoint"]), 0)
        if limit > 0:
            taken += _claim(conn, "endpoint = ?", row["endpoint"], limit, now, body=True)
    return Claimed(old, taken)


#: Every column but the inline body, which reads as NULL.
_WITHOUT_BODY = (
    "seq, inference_id, endpoint, status, created, expires, timeout, attempts, started, ended, "
    "input_location, NULL AS body, output_location, failure_location, failure_reason, request"
)


def _claim(
    conn: sqlite3.Connection, where: str, value: object, limit: int, now: float, *, body: bool
) -> list[QueuedInvocation]:
    """The oldest ``limit`` queued rows matching ``where`` set ``Running`` (``where`` is one of
    this module's own conditions, never user text)."""
    # One statement, not an update and a read per row: in a thread, each is a GIL hand-off.
    columns = "*" if body else _WITHOUT_BODY
    rows = conn.execute(
        "UPDATE async_invocations SET status = 'Running', started = ?, attempts = attempts + 1 "
        "WHERE seq IN (SELECT seq FROM async_invocations WHERE status = 'Queued' AND "
        f"{where} ORDER BY seq LIMIT ?) RETURNING {columns}",
        (now, value, limit),
    ).fetchall()
    return sorted((_row(r) for r in rows), key=lambda r: r.seq)


#: Rows per INSERT statement (13 parameters each: under SQLite's oldest limit of 999).
_INSERT_ROWS = 70
_INSERT = (
    "INSERT INTO async_invocations (inference_id, endpoint, status, created, expires, "
    "timeout, input_location, body, output_location, failure_location, request, started, "
    "attempts) VALUES "
)


def _insert(
    conn: sqlite3.Connection, changes: Sequence[Enqueue], now: float
) -> list[QueuedInvocation]:
    """New ``Queued`` rows, many per statement (each statement run from the commit thread
    hands the GIL over and back). Their ``seq`` in order: rowids are given in VALUES order."""
    seqs: list[int] = []
    for start in range(0, len(changes), _INSERT_ROWS):
        chunk = changes[start : start + _INSERT_ROWS]
        values: list[object] = []
        for c in chunk:
            status = AsyncStatus.RUNNING if c.running else AsyncStatus.QUEUED
            values += (c.inference_id, c.endpoint, status.value, now, now + c.ttl, c.timeout)
            values += (c.input_location, c.body, c.output_location, c.failure_location)
            values += (dump(c.request), now if c.running else None, int(c.running))
        marks = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
        rows = conn.execute(f"{_INSERT}{marks} RETURNING seq", values).fetchall()
        seqs += sorted(int(r[0]) for r in rows)
    return [
        QueuedInvocation(
            seq=seq,
            inference_id=change.inference_id,
            endpoint=change.endpoint,
            status=AsyncStatus.RUNNING if change.running else AsyncStatus.QUEUED,
            created=now,
            expires=now + change.ttl,
            timeout=change.timeout,
            output_location=change.output_location,
            failure_location=change.failure_location,
            input_location=change.input_location,
            body=change.body,
            attempts=int(change.running),
            request=dict(change.request),
        )
        for seq, change in zip(seqs, changes, strict=True)
    ]


def _finish(conn: sqlite3.Connection, changes: Sequence[Finish], now: float) -> None:
    """Ended rows, one statement per status and reason (answers: one for the whole group)."""
    by_end: dict[tuple[AsyncStatus, str | None], list[int]] = {}
    for change in changes:
        by_end.setdefault((change.status, change.reason), []).append(change.seq)
    for (status, reason), all_seqs in by_end.items():
        for start in range(0, len(all_seqs), 900):
            seqs = all_seqs[start : start + 900]
            conn.execute(
                "UPDATE async_invocations SET status = ?, ended = ?, failure_reason = ?, "
                f"body = NULL WHERE status = 'Running' AND seq IN ({','.join('?' * len(seqs))})",
                (status.value, now, reason, *seqs),
            )


def _row(row: sqlite3.Row) -> QueuedInvocation:
    body = row["body"]
    return QueuedInvocation(
        seq=int(row["seq"]),
        inference_id=str(row["inference_id"]),
        endpoint=str(row["endpoint"]),
        status=AsyncStatus(row["status"]),
        created=float(row["created"]),
        expires=float(row["expires"]),
        timeout=float(row["timeout"]),
        output_location=str(row["output_location"]),
        failure_location=str(row["failure_location"]),
        input_location=row["input_location"],
        body=None if body is None else bytes(body),
        attempts=int(row["attempts"]),
        failure_reason=row["failure_reason"],
        request=json.loads(row["request"]),
    )
