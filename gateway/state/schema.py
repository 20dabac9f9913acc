"""The database's schema as numbered migrations, applied in order, each in its own transaction.

``PRAGMA user_version`` holds the number of the last one applied. It lives in the database header,
which SQLite writes inside the transaction, so a migration and its number commit together or not
at all: a gateway killed halfway through one starts again from the same version. A migration is
never edited once released; a change to the schema is a new entry at the end of ``MIGRATIONS``.
"""

from __future__ import annotations

import sqlite3

from gateway.state.records import StateCorrupt

#: The endpoints table's columns from ``pending_name`` on, as version 1 made them and version 4
#: rebuilt them: one text, so the two cannot drift apart.
_ENDPOINT_COLUMNS = """\
    pending_name    TEXT,
    status          TEXT NOT NULL,
    failure_reason  TEXT,
    created         REAL NOT NULL,
    modified        REAL NOT NULL,
    update_started  REAL,
    request         TEXT NOT NULL"""

_V1 = (
    """
CREATE TABLE models (
    key      TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    arn      TEXT NOT NULL,
    created  REAL NOT NULL,
    request  TEXT NOT NULL
);
CREATE INDEX models_by_created ON models (created, key);

CREATE TABLE endpoint_configs (
    key      TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    arn      TEXT NOT NULL,
    created  REAL NOT NULL,
    request  TEXT NOT NULL
);
CREATE INDEX configs_by_created ON endpoint_configs (created, key);

-- Which models a config's variants name, so that "is this model in use" is one indexed query.
CREATE TABLE config_models (
    config_key  TEXT NOT NULL REFERENCES endpoint_configs (key) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    variant     TEXT NOT NULL,
    model_name  TEXT NOT NULL,
    model_key   TEXT NOT NULL,
    PRIMARY KEY (config_key, position)
);
CREATE INDEX config_models_by_model ON config_models (model_key);

-- An endpoint names configs that exist: the foreign keys back the control plane's own checks.
CREATE TABLE endpoints (
    key             TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    arn             TEXT NOT NULL,
    config_key      TEXT NOT NULL REFERENCES endpoint_configs (key),
    config_name     TEXT NOT NULL,
    pending_key     TEXT REFERENCES endpoint_configs (key),
"""
    + _ENDPOINT_COLUMNS
    + """
);
CREATE INDEX endpoints_by_created ON endpoints (created, key);
CREATE INDEX endpoints_by_modified ON endpoints (modified, key);
CREATE INDEX endpoints_by_status ON endpoints (status, key);
CREATE INDEX endpoints_by_config ON endpoints (config_key);
CREATE INDEX endpoints_by_pending ON endpoints (pending_key);

CREATE TABLE transform_jobs (
    key             TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    arn             TEXT NOT NULL,
    model_name      TEXT NOT NULL,
    model_key       TEXT NOT NULL,
    status          TEXT NOT NULL,
    failure_reason  TEXT,
    created         REAL NOT NULL,
    modified        REAL NOT NULL,
    started         REAL,
    ended           REAL,
    request         TEXT NOT NULL,
    progress        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_by_created ON transform_jobs (created, key);
CREATE INDEX jobs_by_modified ON transform_jobs (modified, key);
CREATE INDEX jobs_by_status ON transform_jobs (status, key);
CREATE INDEX jobs_by_model ON transform_jobs (model_key);
"""
)

#: (version, SQL), in order. Append only.
# UpdateEndpointWeightsAndCapacities: per variant, the weight and instance count asked for
# over the config's ({"VariantName": {"weight": 1.0, "count": 2}}), cleared by a new config.
_V2 = """
ALTER TABLE endpoints ADD COLUMN desired TEXT NOT NULL DEFAULT '{}';
"""

# InvokeEndpointAsync's durable queue (gateway/state/queue.py): one row per accepted request,
# taken in ``seq`` order; ``Queued`` -> ``Running`` -> ``Completed`` | ``Failed``.
_V3 = """
CREATE TABLE async_invocations (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    inference_id      TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    status            TEXT NOT NULL,
    created           REAL NOT NULL,
    expires           REAL NOT NULL,
    timeout           REAL NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    started           REAL,
    ended             REAL,
    input_location    TEXT,
    body              BLOB,
    output_location   TEXT NOT NULL,
    failure_location  TEXT NOT NULL,
    failure_reason    TEXT,
    request           TEXT NOT NULL
);
CREATE INDEX async_by_status ON async_invocations (status, endpoint, seq);
"""

# An endpoint keeps its own copy of what it was deployed with (``serving``, and ``pending``
# while an update runs: {"name": config name, "config": CreateEndpointConfig request,
# "models": {model name: CreateModel request}}), as SageMaker does: its config and models may
# then be deleted while it serves. The table is rebuilt without its foreign keys to the configs,
# and the copies are filled from the configs and models that exist now.
_SNAPSHOT = """(SELECT json_object('name', c.name, 'config', json(c.request), 'models',
    (SELECT json_group_object(m.name, json(m.request)) FROM config_models cm
     JOIN models m ON m.key = cm.model_key WHERE cm.config_key = c.key))
  FROM endpoint_configs c WHERE c.key = e.{column})"""
_COLUMNS = (
    "key, name, arn, config_key, config_name, pending_key, pending_name, status, "
    "failure_reason, created, modified, update_started, request, desired"
)
_V4 = f"""
CREATE TABLE endpoints_v4 (
    key             TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    arn             TEXT NOT NULL,
    config_key      TEXT NOT NULL,
    config_name     TEXT NOT NULL,
    pending_key     TEXT,
{_ENDPOINT_COLUMNS},
    desired         TEXT NOT NULL DEFAULT '{{}}',
    serving         TEXT NOT NULL DEFAULT '{{}}',
    pending         TEXT
);
INSERT INTO endpoints_v4 ({_COLUMNS}, serving, pending)
SELECT {_COLUMNS},
    COALESCE({_SNAPSHOT.format(column="config_key")}, '{{}}'),
    {_SNAPSHOT.format(column="pending_key")}
FROM endpoints e;
DROP TABLE endpoints;
ALTER TABLE endpoints_v4 RENAME TO endpoints;
CREATE INDEX endpoints_by_created ON endpoints (created, key);
CREATE INDEX endpoints_by_modified ON endpoints (modified, key);
CREATE INDEX endpoints_by_status ON endpoints (status, key);
CREATE INDEX endpoints_by_config ON endpoints (config_key);
CREATE INDEX endpoints_by_pending ON endpoints (pending_key);
"""

# Deployment guardrails (gateway/lifecycle/deployment.py): the DeploymentConfig last given to
# CreateEndpoint or UpdateEndpoint (``LastDeploymentConfig``), and while an update runs its
# progress ({"policy": ..., "phase": ..., "share": ..., "stages": [...]}) so that a gateway
# killed in the middle resumes or rolls back.
_V5 = """
ALTER TABLE endpoints ADD COLUMN deployment_config TEXT;
ALTER TABLE endpoints ADD COLUMN rollout TEXT;
"""

# Inference components (gateway/state/components.py): one row per component, on an endpoint's
# variant; ``model`` is the CreateModel-shaped request one copy runs (taken at create time, so
# the model may be deleted meanwhile), ``copies`` the copy count asked for; ``pending_*`` hold
# the new specification while UpdateInferenceComponent rolls it out.
_V6 = """
CREATE TABLE inference_components (
    key             TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    arn             TEXT NOT NULL,
    endpoint_key    TEXT NOT NULL,
    endpoint_name   TEXT NOT NULL,
    variant         TEXT NOT NULL,
    status          TEXT NOT NULL,
    failure_reason  TEXT,
    created         REAL NOT NULL,
    modified        REAL NOT NULL,
    request         TEXT NOT NULL,
    model           TEXT NOT NULL,
    copies          INTEGER NOT NULL,
    pending_request TEXT,
    pending_model   TEXT
);
CREATE INDEX components_by_created ON inference_components (created, key);
CREATE INDEX components_by_modified ON inference_components (modified, key);
CREATE INDEX components_by_status ON inference_components (status, key);
CREATE INDEX components_by_endpoint ON inference_components (endpoint_key);
"""

MIGRATIONS: list[tuple[int, str]] = [
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
    (5, _V5),
    (6, _V6),
]


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: list[tuple[int, str]] = MIGRATIONS) -> int:
    """Bring the database up to the last migration; return the version it is at.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration opens its own
    ``BEGIN IMMEDIATE``, so that a second process opening the file at the same time waits instead
    of applying the same migration twice.
    """
    latest = migrations[-1][0] if migrations else 0
    current = version(conn)
    if current > latest:
        raise StateCorrupt(
            f"the state database is at schema version {current}, newer than this Tandem "
            f"knows ({latest}); upgrade Tandem or use another state folder"
        )
    for number, sql in migrations:
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) >= number:  # another process got there first
                conn.execute("COMMIT")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(number)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = number
    return current


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own).

    Pieces between semicolons are joined until SQLite calls them a complete statement, so a
    semicolon inside a string or a trigger body does not cut one short.
    """
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    out: list[str] = []
    buffer = ""
    for piece in "\n".join(lines).split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                out.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement in a migration: {buffer.strip()[:80]}")
    return out
