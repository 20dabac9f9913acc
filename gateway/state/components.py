"""Inference components in the state database: one row each, on an endpoint's variant.

The control plane writes what is asked (``Creating``, ``Updating`` towards a copy count or a new
specification, ``Deleting``); the component runner (``gateway.lifecycle.components``) makes it
run and reports back (``InService``, ``Failed`` with a reason, the row removed). Each writer is
one transaction that checks what it needs, calls ``admit`` (the host budget) with the component
as it would be and every other one, and writes, or raises and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.state import paging
from gateway.state.db import Database, dump, exists, key
from gateway.state.records import (
    AlreadyExists,
    ComponentRecord,
    ComponentStatus,
    NotFound,
    Page,
    Query,
    WrongState,
)

_COMPONENTS = paging.Table("inference_components", modified=True, status=True)
KIND = "inference component"

#: ``admit(component as it would be, every other component)``: raises to refuse the change.
AdmitComponent = Callable[[ComponentRecord, list[ComponentRecord]], None]


class ComponentStore(Database):
    def add_component(
        self,
        name: str,
        arn: str,
        endpoint: str,
        variant: str,
        request: Mapping[str, Any],
        model: Mapping[str, Any],
        copies: int,
        *,
        admit: AdmitComponent | None = None,
    ) -> ComponentRecord:
        """A new component, ``Creating``, on ``endpoint`` (which must exist)."""
        now = self.now()
        with self._tx() as conn:
            if exists(conn, "inference_components", name):
                raise AlreadyExists(KIND, name)
            row = conn.execute(
                "SELECT name FROM endpoints WHERE key = ?", (key(endpoint),)
            ).fetchone()
            if row is None:
                raise NotFound("endpoint", endpoint)
            conn.execute(
                "INSERT INTO inference_components (key, name, arn, endpoint_key, endpoint_name, "
                "variant, status, created, modified, request, model, copies) "
                "VALUES (?, ?, ?, ?, ?, ?, 'Creating', ?, ?, ?, ?, ?)",
                (
                    key(name),
                    name,
                    arn,
                    key(endpoint),
                    row[0],
                    variant,
                    now,
                    now,
                    dump(request),
                    dump(model),
                    int(copies),
                ),
            )
            return _admitted(conn, name, admit)

    def get_component(self, name: str) -> ComponentRecord | None:
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT * FROM inference_components WHERE key = ?", (key(name),)
            ).fetchone()
        return None if row is None else _component(row)

    def list_components(
        self, query: Query, endpoint: str | None = None, variant: str | None = None
    ) -> Page[ComponentRecord]:
        equal: dict[str, Any] = {}
        if endpoint is not None:
            equal["endpoint_key"] = key(endpoint)
        if variant is not None:
            equal["variant"] = variant
        with self._tx(write=False) as conn:
            rows = conn.execute(*paging.select(_COMPONENTS, query, equal=equal)).fetchall()
        return Page([_component(r) for r in rows[: query.limit]], paging.next_token(rows, query))

    def components(self, endpoint: str | None = None) -> list[ComponentRecord]:
        """Every component (of ``endpoint``), by name: what a runner starts from."""
        with self._tx(write=False) as conn:
            if endpoint is None:
                rows = conn.execute("SELECT * FROM inference_components ORDER BY key").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM inference_components WHERE endpoint_key = ? ORDER BY key",
                    (key(endpoint),),
                ).fetchall()
        return [_component(r) for r in rows]

    def begin_copies(
        self, name: str, copies: int, *, admit: AdmitComponent | None = None
    ) -> ComponentRecord:
        """``InService`` -> ``Updating`` towards ``copies`` copies."""
        return self._begin(name, "copies = ?", (int(copies),), admit)

    def begin_component_update(
        self,
        name: str,
        request: Mapping[str, Any],
        model: Mapping[str, Any],
        copies: int,
        *,
        admit: AdmitComponent | None = None,
    ) -> ComponentRecord:
        """``InService`` -> ``Updating`` towards a new specification (the old one serves)."""
        return self._begin(
            name,
            "pending_request = ?, pending_model = ?, copies = ?",
            (dump(request), dump(model), int(copies)),
            admit,
        )

    def _begin(
        self, name: str, sets: str, args: tuple[Any, ...], admit: AdmitComponent | None
    ) -> ComponentRecord:
        now = self.now()
        with self._tx() as conn:
            row = _component_row(conn, name)
            if row["status"] != ComponentStatus.IN_SERVICE:
                raise WrongState(KIND, row["name"], row["status"])
            conn.execute(
                f"UPDATE inference_components SET {sets}, status = 'Updating', "
                "failure_reason = NULL, modified = ? WHERE key = ?",
                (*args, now, key(name)),
            )
            return _admitted(conn, name, admit)

    def finish_component_update(self, name: str, failure_reason: str | None = None) -> None:
        """The update ran (the pending specification is the component's), or it failed
        (``failure_reason``: the old one stays); ``InService`` either way."""
        now = self.now()
        with self._tx() as conn:
            row = _component_row(conn, name)
            if row["status"] != ComponentStatus.UPDATING:
                raise WrongState(KIND, row["name"], row["status"])
            moved = failure_reason is None and row["pending_request"] is not None
            conn.execute(
                "UPDATE inference_components SET request = ?, model = ?, pending_request = NULL, "
                "pending_model = NULL, status = 'InService', failure_reason = ?, modified = ? "
                "WHERE key = ?",
                (
                    row["pending_request"] if moved else row["request"],
                    row["pending_model"] if moved else row["model"],
                    failure_reason,
                    now,
                    key(name),
                ),
            )

    def set_component_status(
        self,
        name: str,
        status: ComponentStatus,
        failure_reason: str | None = None,
        *,
        expect: Iterable[ComponentStatus] | None = None,
    ) -> ComponentRecord:
        """Set the status (and reason); with ``expect``, only from one of those statuses."""
        now = self.now()
        with self._tx() as conn:
            row = _component_row(conn, name)
            if expect is not None and row["status"] not in {str(s) for s in expect}:
                raise WrongState(KIND, row["name"], row["status"])
            conn.execute(
                "UPDATE inference_components SET status = ?, failure_reason = ?, modified = ? "
                "WHERE key = ?",
                (str(ComponentStatus(status)), failure_reason, now, key(name)),
            )
            return _component(_component_row(conn, name))

    def begin_component_delete(self, name: str) -> ComponentRecord:
        """Any status -> ``Deleting`` (the runner drains, stops, then ``remove_component``)."""
        return self.set_component_status(name, ComponentStatus.DELETING)

    def remove_component(self, name: str) -> bool:
        with self._tx() as conn:
            cursor = conn.execute("DELETE FROM inference_components WHERE key = ?", (key(name),))
            return cursor.rowcount > 0


def _admitted(conn: sqlite3.Connection, name: str, admit: AdmitComponent | None) -> ComponentRecord:
    record = _component(_component_row(conn, name))
    if admit is not None:
        others = conn.execute(
            "SELECT * FROM inference_components WHERE key != ?", (key(name),)
        ).fetchall()
        admit(record, [_component(r) for r in others])
    return record


def _component_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM inference_components WHERE key = ?", (key(name),)).fetchone()
    if row is None:
        raise NotFound(KIND, name)
    return row


def _load(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def _component(row: sqlite3.Row) -> ComponentRecord:
    return ComponentRecord(
        name=row["name"],
        arn=row["arn"],
        endpoint=row["endpoint_name"],
        variant=row["variant"],
        status=ComponentStatus(row["status"]),
        failure_reason=row["failure_reason"],
        created=row["created"],
        modified=row["modified"],
        request=json.loads(row["request"]),
        model=json.loads(row["model"]),
        copies=int(row["copies"]),
        pending_request=_load(row["pending_request"]),
        pending_model=_load(row["pending_model"]),
    )


def for_components(config: Mapping[str, Any]) -> bool:
    """A config made for inference components: production variants without ``ModelName``."""
    variants = config.get("ProductionVariants") or []
    return bool(variants) and all(not v.get("ModelName") for v in variants)
