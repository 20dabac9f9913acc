"""Models and endpoint configs in the state database: what endpoints and jobs are made from.

Each writer is one transaction that checks what it needs (a config's models exist, a model is
not in use by a running job) and writes, or raises and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from gateway.state import paging
from gateway.state.db import Database, dump, exists, key
from gateway.state.records import (
    AlreadyExists,
    ConfigRecord,
    InUse,
    ModelRecord,
    NotFound,
    Page,
    Query,
)

_MODELS = paging.Table("models")
_CONFIGS = paging.Table("endpoint_configs")
_ACTIVE_JOBS = "('InProgress', 'Stopping')"


class CatalogStore(Database):
    # ---- models ---------------------------------------------------------------------------------

    def add_model(self, name: str, arn: str, request: Mapping[str, Any]) -> ModelRecord:
        now = self.now()
        with self._tx() as conn:
            if exists(conn, "models", name):
                raise AlreadyExists("model", name)
            conn.execute(
                "INSERT INTO models (key, name, arn, created, request) VALUES (?, ?, ?, ?, ?)",
                (key(name), name, arn, now, dump(request)),
            )
        return ModelRecord(name, arn, now, dict(request))

    def get_model(self, name: str) -> ModelRecord | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM models WHERE key = ?", (key(name),)).fetchone()
        return None if row is None else _model(row)

    def list_models(self, query: Query) -> Page[ModelRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(*paging.select(_MODELS, query)).fetchall()
        return Page([_model(r) for r in rows[: query.limit]], paging.next_token(rows, query))

    def model_users(self, name: str) -> list[str]:
        """The running transform jobs that use the model (endpoints keep their own copy)."""
        with self._tx(write=False) as conn:
            return _model_users(conn, key(name))

    def delete_model(self, name: str) -> None:
        with self._tx() as conn:
            if not exists(conn, "models", name):
                raise NotFound("model", name)
            users = _model_users(conn, key(name))
            if users:
                raise InUse("model", name, users)
            conn.execute("DELETE FROM models WHERE key = ?", (key(name),))

    # ---- endpoint configs -----------------------------------------------------------------------

    def add_config(
        self, name: str, arn: str, request: Mapping[str, Any], models: Mapping[str, str]
    ) -> ConfigRecord:
        """A config whose variants (name -> model name) each name a model that exists now."""
        now = self.now()
        with self._tx() as conn:
            if exists(conn, "endpoint_configs", name):
                raise AlreadyExists("endpoint configuration", name)
            for model in models.values():
                if not exists(conn, "models", model):
                    raise NotFound("model", model)
            conn.execute(
                "INSERT INTO endpoint_configs (key, name, arn, created, request) "
                "VALUES (?, ?, ?, ?, ?)",
                (key(name), name, arn, now, dump(request)),
            )
            conn.executemany(
                "INSERT INTO config_models (config_key, position, variant, model_name, model_key) "
                "VALUES (?, ?, ?, ?, ?)",
                [(key(name), i, v, m, key(m)) for i, (v, m) in enumerate(models.items())],
            )
        return ConfigRecord(name, arn, now, dict(request), dict(models))

    def get_config(self, name: str) -> ConfigRecord | None:
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT * FROM endpoint_configs WHERE key = ?", (key(name),)
            ).fetchone()
            return None if row is None else _config(row, _variants(conn, [row["key"]]))

    def list_configs(self, query: Query) -> Page[ConfigRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(*paging.select(_CONFIGS, query)).fetchall()
            page = rows[: query.limit]
            variants = _variants(conn, [r["key"] for r in page])
        return Page([_config(r, variants) for r in page], paging.next_token(rows, query))

    def delete_config(self, name: str) -> None:
        """Gone, even while endpoints use it: each keeps its own copy (``Deployed``)."""
        with self._tx() as conn:
            if not exists(conn, "endpoint_configs", name):
                raise NotFound("endpoint configuration", name)
            conn.execute("DELETE FROM endpoint_configs WHERE key = ?", (key(name),))


# ---- rows -> records ---------------------------------------------------------------------------


def _model_users(conn: sqlite3.Connection, model_key: str) -> list[str]:
    jobs = conn.execute(
        f"SELECT name FROM transform_jobs WHERE model_key = ? AND status IN {_ACTIVE_JOBS} "
        "ORDER BY key",
        (model_key,),
    ).fetchall()
    return [f'transform job "{r[0]}"' for r in jobs]


def _variants(conn: sqlite3.Connection, keys: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {k: {} for k in keys}
    if keys:
        marks = ",".join("?" * len(keys))
        for row in conn.execute(
            f"SELECT config_key, variant, model_name FROM config_models "
            f"WHERE config_key IN ({marks}) ORDER BY config_key, position",
            keys,
        ):
            out[row[0]][row[1]] = row[2]
    return out


def _model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(row["name"], row["arn"], row["created"], json.loads(row["request"]))


def _config(row: sqlite3.Row, variants: dict[str, dict[str, str]]) -> ConfigRecord:
    return ConfigRecord(
        row["name"], row["arn"], row["created"], json.loads(row["request"]), variants[row["key"]]
    )
