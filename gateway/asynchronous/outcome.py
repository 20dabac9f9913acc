"""How a queued request ends, apart from the loop that runs it: its outcome, its failure object,
the look for an object a worker killed mid-request already wrote, and the retried writes that
record the end.

``worker.py`` decides *when* a request ends; this module holds *what* an end is made of, so the
rules for the one object a request leaves behind read in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.asynchronous.storage import Storage, StorageError
from gateway.errors import ApiError, ModelError, ServiceUnavailable
from gateway.state import QueuedInvocation

log = logging.getLogger("tandem.async")

#: Tries of each write that ends a request (its failure object, its row), and the first pause.
SETTLE_TRIES = 3
SETTLE_BACKOFF = 0.5
INTERNAL = (
    "The gateway could not run the request: an internal error (logged by the gateway with its "
    "details, under this InferenceId). The request is not run again."
)
RECOVERED_FAILURE = "failed before the gateway restarted (see the failure object)"


@dataclass(frozen=True)
class Outcome:
    """How a request ended: ``code`` None for an answer written, else its failure's code."""

    code: str | None = None
    reason: str = ""
    content_type: str | None = None
    #: Its object was already there (written before a restart): only the row is finished.
    recovered: bool = False
    #: A local answer not written yet: the group commit that finishes the row writes it.
    answer: bytes | None = None


class Failed(Exception):
    """A request that ends in a failure object; ``code`` and text are what the object says."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def failure_document(row: QueuedInvocation, outcome: Outcome) -> bytes:
    """The failure object's bytes: SageMaker's ErrorCode, Message and InferenceId."""
    document = {
        "ErrorCode": outcome.code,
        "Message": outcome.reason,
        "InferenceId": row.inference_id,
    }
    return json.dumps(document, indent=None).encode()


async def recovered(storage: Storage, row: QueuedInvocation) -> Outcome | None:
    """The end of a request a dead worker already answered, by the object it wrote."""
    try:
        if await asyncio.to_thread(storage.exists, row.output_location):
            return Outcome(recovered=True)
        if await asyncio.to_thread(storage.exists, row.failure_location):
            return Outcome("Failed", RECOVERED_FAILURE, recovered=True)
    except StorageError as exc:
        log.warning("asynchronous request %s: %s; running it again", row.inference_id, exc)
    return None


async def settle(
    row: QueuedInvocation,
    what: str,
    act: Callable[[], Awaitable[object]],
    backoff: float = SETTLE_BACKOFF,
) -> bool:
    """``await act()``, tried SETTLE_TRIES times with backoff; whether it did."""
    for attempt in range(1, SETTLE_TRIES + 1):
        try:
            await act()
            return True
        except Exception as exc:  # a storage or a database error: both are worth a retry
            name = row.inference_id
            log.warning(
                "asynchronous request %s: could not %s (try %d): %s", name, what, attempt, exc
            )
            if attempt < SETTLE_TRIES:
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
    return False


def expired_outcome(row: QueuedInvocation) -> Outcome:
    return Outcome(
        "RequestExpired",
        f"The request expired: it waited in the queue longer than its RequestTTLSeconds "
        f"({round(row.expires - row.created)} s) before a worker could take it.",
    )


def call_failure(row: QueuedInvocation, error: ApiError, *, known: bool) -> Failed:
    """InvokeEndpoint's error as the failure object says it (``known``: the endpoint exists)."""
    if not known:
        return Failed(error.code, error.message)
    detail = {k: v for k, v in error.fields.items() if k != "LogStreamArn"}
    extra = f" ({json.dumps(detail)})" if detail else ""
    if isinstance(error, ModelError) and error.original_status == 0:  # out of time
        extra += f" InvocationTimeoutSeconds: {round(row.timeout)} s."
    return Failed(error.code, error.message + extra)


def broken_off(breaks: int, exc: ServiceUnavailable) -> Failed:
    return Failed(
        "ModelError",
        f"The endpoint's container broke off the request {breaks} times without a whole "
        f"answer (the last time: {exc.__cause__ or exc}); it is not run again, as the request "
        "itself may be what makes the container fail.",
    )
