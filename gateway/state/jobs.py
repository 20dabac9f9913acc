"""Transform jobs in the state database: created ``InProgress``, then what the runner reports.

The runner owns the running; these methods are how it tells the control plane (and, through the
database, a gateway started again after a crash) where a job stands.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.state import paging
from gateway.state.db import Database, dump, exists, key
from gateway.state.records import (
    JOB_FINISHED,
    AlreadyExists,
    JobRecord,
    JobStatus,
    NotFound,
    Page,
    Query,
    WrongState,
)

_JOBS = paging.Table("transform_jobs", modified=True, status=True)


class JobStore(Database):
    def add_job(self, name: str, arn: str, model: str, request: Mapping[str, Any]) -> JobRecord:
        """A new job, ``InProgress``, for ``model`` (which must exist)."""
        now = self.now()
        with self._tx() as conn:
            if exists(conn, "transform_jobs", name):
                raise AlreadyExists("transform job", name)
            row = conn.execute("SELECT name FROM models WHERE key = ?", (key(model),)).fetchone()
            if row is None:
                raise NotFound("model", model)
            conn.execute(
                "INSERT INTO transform_jobs (key, name, arn, model_name, model_key, status, "
                "created, modified, request) VALUES (?, ?, ?, ?, ?, 'InProgress', ?, ?, ?)",
                (key(name), name, arn, row[0], key(model), now, now, dump(request)),
            )
            return _job(_job_row(conn, name))

    def get_job(self, name: str) -> JobRecord | None:
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT * FROM transform_jobs WHERE key = ?", (key(name),)
            ).fetchone()
        return None if row is None else _job(row)

    def list_jobs(self, query: Query) -> Page[JobRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(*paging.select(_JOBS, query)).fetchall()
        return Page([_job(r) for r in rows[: query.limit]], paging.next_token(rows, query))

    def jobs(self, statuses: Iterable[str] | None = None) -> list[JobRecord]:
        """Every job (in one of ``statuses``), oldest first: what a runner resumes."""
        wanted = None if statuses is None else {str(s) for s in statuses}
        with self._tx(write=False) as conn:
            rows = conn.execute("SELECT * FROM transform_jobs ORDER BY created, key").fetchall()
        return [_job(r) for r in rows if wanted is None or r["status"] in wanted]

    def job_started(self, name: str) -> JobRecord:
        """The runner began (again): the first call sets ``TransformStartTime``."""
        now = self.now()
        with self._tx() as conn:
            _job_row(conn, name)
            conn.execute(
                "UPDATE transform_jobs SET started = coalesce(started, ?), modified = ? "
                "WHERE key = ?",
                (now, now, key(name)),
            )
            return _job(_job_row(conn, name))

    def set_job_progress(self, name: str, progress: Mapping[str, Any]) -> None:
        """What the runner has done so far (any JSON object); replaces the last report."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE transform_jobs SET progress = ? WHERE key = ?", (dump(progress), key(name))
            )
            if cursor.rowcount == 0:
                raise NotFound("transform job", name)

    def set_job_status(
        self,
        name: str,
        status: JobStatus,
        failure_reason: str | None = None,
        *,
        expect: Iterable[JobStatus] | None = None,
    ) -> JobRecord:
        """Set the status (and reason); a finished status sets ``TransformEndTime``.

        With ``expect``, only from one of those statuses (``WrongState`` otherwise): the runner
        finishing a job passes ``{InProgress}`` for ``Completed`` so a stop asked meanwhile wins,
        and ``{Stopping}`` for ``Stopped``.
        """
        status = JobStatus(status)
        now = self.now()
        with self._tx() as conn:
            row = _job_row(conn, name)
            if expect is not None and row["status"] not in {str(s) for s in expect}:
                raise WrongState("transform job", row["name"], row["status"])
            ended = now if status in JOB_FINISHED else None
            conn.execute(
                "UPDATE transform_jobs SET status = ?, failure_reason = ?, modified = ?, "
                "ended = ? WHERE key = ?",
                (str(status), failure_reason, now, ended, key(name)),
            )
            return _job(_job_row(conn, name))

    def request_stop(self, name: str) -> JobRecord:
        """``InProgress`` -> ``Stopping`` (``Stopping`` stays); a finished job: ``WrongState``."""
        now = self.now()
        with self._tx() as conn:
            row = _job_row(conn, name)
            if row["status"] in JOB_FINISHED:
                raise WrongState("transform job", row["name"], row["status"])
            if row["status"] == JobStatus.IN_PROGRESS:
                conn.execute(
                    "UPDATE transform_jobs SET status = 'Stopping', modified = ? WHERE key = ?",
                    (now, key(name)),
                )
            return _job(_job_row(conn, name))


def _job_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM transform_jobs WHERE key = ?", (key(name),)).fetchone()
    if row is None:
        raise NotFound("transform job", name)
    return row


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        name=row["name"],
        arn=row["arn"],
        model=row["model_name"],
        status=JobStatus(row["status"]),
        failure_reason=row["failure_reason"],
        created=row["created"],
        modified=row["modified"],
        started=row["started"],
        ended=row["ended"],
        request=json.loads(row["request"]),
        progress=json.loads(row["progress"]),
    )
