"""Endpoints in the state database (``gateway.state.db`` says how; models and configs: ``catalog``).

Every writer is one transaction that checks what it needs (the config exists, the model is not
in use by a running job, the endpoint is ``InService``) and writes, or raises one of
``AlreadyExists``, ``NotFound``, ``InUse``, ``WrongState`` and changes nothing. An endpoint keeps
its own copy of its config and models (``Deployed``), so deleting those never touches it. The
writers that make an endpoint run more take an ``admit`` check, called inside the transaction
with the endpoint as it would be and every other endpoint: it raises to refuse (the host
budget), and nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.state import paging
from gateway.state.catalog import CatalogStore
from gateway.state.components import ComponentStore
from gateway.state.db import dump, exists, key
from gateway.state.deployed import deployment, parse
from gateway.state.jobs import JobStore
from gateway.state.queue import AsyncQueue
from gateway.state.records import (
    AlreadyExists,
    EndpointRecord,
    EndpointStatus,
    NotFound,
    Page,
    Query,
    WrongState,
)

_ENDPOINTS = paging.Table("endpoints", modified=True, status=True)

#: ``admit(endpoint as it would be, every other endpoint)``: raises to refuse the change.
Admit = Callable[[EndpointRecord, list[EndpointRecord]], None]


class StateStore(CatalogStore, AsyncQueue, JobStore, ComponentStore):
    """Models, endpoint configs, endpoints and transform jobs, as SageMaker has them.

    ``StateStore(state_dir / FILENAME)``; safe to share between threads.
    """

    # ---- endpoints ------------------------------------------------------------------------------

    def add_endpoint(
        self,
        name: str,
        arn: str,
        config: str,
        request: Mapping[str, Any],
        *,
        admit: Admit | None = None,
    ) -> EndpointRecord:
        """A new endpoint, ``Creating`` on ``config`` (which must exist, with its models)."""
        now = self.now()
        with self._tx() as conn:
            if exists(conn, "endpoints", name):
                raise AlreadyExists("endpoint", name)
            config_name, deployed = deployment(conn, config)
            policy = request.get("DeploymentConfig")
            conn.execute(
                "INSERT INTO endpoints (key, name, arn, config_key, config_name, status, created, "
                "modified, request, serving, deployment_config) "
                "VALUES (?, ?, ?, ?, ?, 'Creating', ?, ?, ?, ?, ?)",
                (key(name), name, arn, key(config), config_name, now, now, dump(request), deployed,
                 None if policy is None else dump(policy)),
            )  # fmt: skip
            return _admitted(conn, name, admit)

    def get_endpoint(self, name: str) -> EndpointRecord | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM endpoints WHERE key = ?", (key(name),)).fetchone()
        return None if row is None else _endpoint(row)

    def list_endpoints(self, query: Query) -> Page[EndpointRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(*paging.select(_ENDPOINTS, query)).fetchall()
        return Page([_endpoint(r) for r in rows[: query.limit]], paging.next_token(rows, query))

    def endpoints(self, statuses: Iterable[str] | None = None) -> list[EndpointRecord]:
        """Every endpoint (in one of ``statuses``), by name: what a reconciler starts from."""
        wanted = None if statuses is None else {str(s) for s in statuses}
        with self._tx(write=False) as conn:
            rows = conn.execute("SELECT * FROM endpoints ORDER BY key").fetchall()
        return [_endpoint(r) for r in rows if wanted is None or r["status"] in wanted]

    def begin_update(
        self,
        name: str,
        config: str,
        *,
        admit: Admit | None = None,
        rollout: Mapping[str, Any] | None = None,
        remember: Mapping[str, Any] | None = None,
    ) -> EndpointRecord:
        """``InService`` -> ``Updating`` towards ``config``; the old config keeps serving.
        ``rollout``: the guardrails' steps to run; ``remember``: the new LastDeploymentConfig."""
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            pending_name, deployed = deployment(conn, config)
            if row["status"] != EndpointStatus.IN_SERVICE:
                raise WrongState("endpoint", row["name"], row["status"])
            conn.execute(
                "UPDATE endpoints SET pending_key = ?, pending_name = ?, pending = ?, "
                "status = 'Updating', failure_reason = NULL, update_started = ?, modified = ?, "
                "rollout = ?, deployment_config = COALESCE(?, deployment_config) WHERE key = ?",
                (key(config), pending_name, deployed, now, now,
                 None if rollout is None else dump(rollout),
                 None if remember is None else dump(remember), key(name)),
            )  # fmt: skip
            return _admitted(conn, name, admit)

    def set_rollout(self, name: str, rollout: Mapping[str, Any]) -> None:
        """A step of a running update, written before traffic moves (``WrongState`` once the
        update has ended or the endpoint is being deleted)."""
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            if row["status"] != EndpointStatus.UPDATING or row["pending_key"] is None:
                raise WrongState("endpoint", row["name"], row["status"])
            conn.execute(
                "UPDATE endpoints SET rollout = ? WHERE key = ?", (dump(rollout), key(name))
            )

    def finish_update(self, name: str) -> EndpointRecord:
        """The update's containers serve: the pending config becomes the endpoint's config."""
        return self._end_update(name, None)

    def rollback_update(self, name: str, failure_reason: str) -> EndpointRecord:
        """The update failed: back to ``InService`` on the old config, with the reason kept."""
        return self._end_update(name, failure_reason)

    def _end_update(self, name: str, failure_reason: str | None) -> EndpointRecord:
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            if row["status"] != EndpointStatus.UPDATING or row["pending_key"] is None:
                raise WrongState("endpoint", row["name"], row["status"])
            moved = failure_reason is None
            conn.execute(
                "UPDATE endpoints SET config_key = ?, config_name = ?, serving = ?, "
                "pending_key = NULL, pending_name = NULL, pending = NULL, status = 'InService', "
                "failure_reason = ?, update_started = NULL, modified = ?, rollout = NULL, "
                "desired = CASE WHEN ? THEN '{}' ELSE desired END WHERE key = ?",
                (
                    row["pending_key"] if moved else row["config_key"],
                    row["pending_name"] if moved else row["config_name"],
                    row["pending"] if moved else row["serving"],
                    failure_reason,
                    now,
                    moved,
                    key(name),
                ),
            )
            return _endpoint(_endpoint_row(conn, name))

    def set_endpoint_status(
        self,
        name: str,
        status: EndpointStatus,
        failure_reason: str | None = None,
        *,
        expect: Iterable[EndpointStatus] | None = None,
    ) -> EndpointRecord:
        """Set the status (and reason); with ``expect``, only from one of those statuses.

        A reconciler passes ``expect={Creating}`` when a create finishes, so that an endpoint
        deleted meanwhile stays ``Deleting`` instead of coming back ``InService``.
        """
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            if expect is not None and row["status"] not in {str(s) for s in expect}:
                raise WrongState("endpoint", row["name"], row["status"])
            conn.execute(
                "UPDATE endpoints SET status = ?, failure_reason = ?, modified = ? WHERE key = ?",
                (str(EndpointStatus(status)), failure_reason, now, key(name)),
            )
            return _endpoint(_endpoint_row(conn, name))

    def recreate_endpoint(
        self, name: str, config: str, *, admit: Admit | None = None
    ) -> EndpointRecord:
        """``Failed`` -> ``Creating`` on ``config``: a spec file applied again retries its
        endpoint (the API has no such call: SageMaker has a failed endpoint deleted first)."""
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            config_name, deployed = deployment(conn, config)
            if row["status"] != EndpointStatus.FAILED:
                raise WrongState("endpoint", row["name"], row["status"])
            conn.execute(
                "UPDATE endpoints SET config_key = ?, config_name = ?, serving = ?, "
                "pending_key = NULL, pending_name = NULL, pending = NULL, status = 'Creating', "
                "failure_reason = NULL, update_started = NULL, modified = ?, desired = '{}', "
                "rollout = NULL WHERE key = ?",
                (key(config), config_name, deployed, now, key(name)),
            )
            return _admitted(conn, name, admit)

    def begin_resize(
        self,
        name: str,
        desired: Mapping[str, Mapping[str, float]],
        *,
        admit: Admit | None = None,
    ) -> EndpointRecord:
        """``InService`` -> ``Updating`` on the same config, towards new weights and counts
        per variant (merged over what was asked before)."""
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            if row["status"] != EndpointStatus.IN_SERVICE:
                raise WrongState("endpoint", row["name"], row["status"])
            merged = json.loads(row["desired"])
            for variant, values in desired.items():
                merged[variant] = {**merged.get(variant, {}), **values}
            conn.execute(
                "UPDATE endpoints SET desired = ?, status = 'Updating', failure_reason = NULL, "
                "update_started = ?, modified = ? WHERE key = ?",
                (dump(merged), now, now, key(name)),
            )
            return _admitted(conn, name, admit)

    def finish_resize(self, name: str) -> EndpointRecord:
        """The weights and counts asked for run: ``Updating`` (with no new config) -> InService."""
        now = self.now()
        with self._tx() as conn:
            row = _endpoint_row(conn, name)
            if row["status"] != EndpointStatus.UPDATING or row["pending_key"] is not None:
                raise WrongState("endpoint", row["name"], row["status"])
            conn.execute(
                "UPDATE endpoints SET status = 'InService', update_started = NULL, modified = ? "
                "WHERE key = ?",
                (now, key(name)),
            )
            return _endpoint(_endpoint_row(conn, name))

    def begin_delete(self, name: str) -> EndpointRecord:
        """Any status -> ``Deleting`` (the reconciler drains, stops, then ``remove_endpoint``)."""
        return self.set_endpoint_status(name, EndpointStatus.DELETING)

    def remove_endpoint(self, name: str) -> bool:
        """Forget the endpoint; ``False`` if it was already gone."""
        with self._tx() as conn:
            cursor = conn.execute("DELETE FROM endpoints WHERE key = ?", (key(name),))
            return cursor.rowcount > 0


# ---- rows -> records ----------------------------------------------------------------------------


def _admitted(conn: sqlite3.Connection, name: str, admit: Admit | None) -> EndpointRecord:
    """The endpoint as just written, once ``admit`` let it be (it raises: the change rolls back)."""
    record = _endpoint(_endpoint_row(conn, name))
    if admit is not None:
        others = conn.execute("SELECT * FROM endpoints WHERE key != ?", (key(name),)).fetchall()
        admit(record, [_endpoint(r) for r in others])
    return record


def _endpoint_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM endpoints WHERE key = ?", (key(name),)).fetchone()
    if row is None:
        raise NotFound("endpoint", name)
    return row


def _endpoint(row: sqlite3.Row) -> EndpointRecord:
    return EndpointRecord(
        name=row["name"],
        arn=row["arn"],
        config=row["config_name"],
        pending_config=row["pending_name"],
        status=EndpointStatus(row["status"]),
        failure_reason=row["failure_reason"],
        created=row["created"],
        modified=row["modified"],
        update_started=row["update_started"],
        request=json.loads(row["request"]),
        desired=json.loads(row["desired"]),
        deployed=parse(row["serving"]),
        pending_deployed=parse(row["pending"]),
        deployment_config=json.loads(row["deployment_config"] or "null"),
        rollout=json.loads(row["rollout"] or "null"),
    )
