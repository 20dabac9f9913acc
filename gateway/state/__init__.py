"""The gateway's state: what the control plane was asked for, in an embedded SQLite database.

``StateStore(state_dir / FILENAME)`` holds models, endpoint configs, endpoints and transform jobs
(``store.py``, ``jobs.py``), one transaction per change, in WAL mode (``db.py`` says why it
survives SIGKILL). The schema is a list of numbered migrations (``schema.py``). Nothing here
knows HTTP or SageMaker's wire format: the control plane (``gateway.control``) does.
"""

from gateway.state.components import for_components
from gateway.state.db import FILENAME
from gateway.state.queue import (
    AsyncStatus,
    Backlog,
    Change,
    Claim,
    Claimed,
    Enqueue,
    Finish,
    QueuedInvocation,
)
from gateway.state.records import (
    JOB_FINISHED,
    AlreadyExists,
    BadToken,
    ComponentRecord,
    ComponentStatus,
    ConfigRecord,
    Deployed,
    EndpointRecord,
    EndpointStatus,
    InUse,
    JobRecord,
    JobStatus,
    ModelRecord,
    NotFound,
    Page,
    Query,
    SortBy,
    StateCorrupt,
    StateError,
    WrongState,
)
from gateway.state.store import StateStore

__all__ = [
    "FILENAME",
    "JOB_FINISHED",
    "AlreadyExists",
    "AsyncStatus",
    "Backlog",
    "BadToken",
    "Change",
    "Claim",
    "Claimed",
    "ComponentRecord",
    "ComponentStatus",
    "ConfigRecord",
    "Deployed",
    "EndpointRecord",
    "EndpointStatus",
    "Enqueue",
    "Finish",
    "InUse",
    "JobRecord",
    "JobStatus",
    "ModelRecord",
    "NotFound",
    "Page",
    "Query",
    "QueuedInvocation",
    "SortBy",
    "StateCorrupt",
    "StateError",
    "StateStore",
    "WrongState",
    "for_components",
]
