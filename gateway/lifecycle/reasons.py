"""A start's failure as the ``FailureReason`` the API shows: what failed and why, bounded."""

from __future__ import annotations

import logging

from gateway.lifecycle.supervisor import StartError
from pipelines.errors import TandemError

logger = logging.getLogger("tandem.reconciler")

#: Longest FailureReason kept (SageMaker's own limit is 1024 characters).
MAX_REASON = 1024


def failure_reason(exc: BaseException) -> str:
    """A known failure's own message; a bug's details go to the log, not into the API."""
    if isinstance(exc, (StartError, TandemError)):
        text = str(exc)
    else:
        logger.error("unexpected %s", type(exc).__name__, exc_info=exc)
        text = f"An internal error occurred while starting the endpoint ({type(exc).__name__})."
    if len(text) <= MAX_REASON:
        return text
    # Its start says what failed, its end why (a container's last words): keep both.
    cut = "\n...(truncated)...\n"
    head = (MAX_REASON - len(cut)) // 3
    return text[:head] + cut + text[-(MAX_REASON - len(cut) - head) :]
