"""An endpoint's own copy of what it was deployed with (``Deployed``), made and read back.

The copy is taken in the transaction that checks the config and its models exist, so it is
exactly what was there when the endpoint was created or updated.
"""

from __future__ import annotations

import json
import sqlite3

from gateway.state.db import dump, key
from gateway.state.records import Deployed, NotFound


def config_name(conn: sqlite3.Connection, config: str) -> str:
    """The config's name as created; ``NotFound`` if it, or a model it names, does not exist."""
    row = conn.execute("SELECT name FROM endpoint_configs WHERE key = ?", (key(config),)).fetchone()
    if row is None:
        raise NotFound("endpoint configuration", config)
    missing = conn.execute(
        "SELECT c.model_name FROM config_models c LEFT JOIN models m ON m.key = c.model_key "
        "WHERE c.config_key = ? AND m.key IS NULL ORDER BY c.position",
        (key(config),),
    ).fetchone()
    if missing is not None:
        raise NotFound("model", missing[0])
    return str(row[0])


def deployment(conn: sqlite3.Connection, config: str) -> tuple[str, str]:
    """The config's name and the endpoint's own copy of it and its models (as JSON)."""
    name = config_name(conn, config)
    request = conn.execute(
        "SELECT request FROM endpoint_configs WHERE key = ?", (key(config),)
    ).fetchone()[0]
    models = {
        r[0]: json.loads(r[1])
        for r in conn.execute(
            "SELECT m.name, m.request FROM config_models c JOIN models m ON m.key = c.model_key "
            "WHERE c.config_key = ? ORDER BY c.position",
            (key(config),),
        )
    }
    return name, dump({"name": name, "config": json.loads(request), "models": models})


def parse(text: str | None) -> Deployed | None:
    found = json.loads(text) if text else {}
    if not found:
        return None
    return Deployed(found["name"], found["config"], found["models"] or {})
