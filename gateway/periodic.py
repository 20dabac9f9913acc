"""Background loops that run a step every so many seconds until cancelled.

The alarms, the metric flusher and the autoscaling evaluator each run one; a step that fails is
logged and the next still comes, since one bad evaluation or a full disk must not end the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


async def every(
    interval: float, step: Callable[[], Awaitable[object]], log: logging.Logger, failed: str
) -> None:
    """Sleep ``interval``, run ``step``, forever; a step's error is logged as ``failed``."""
    while True:
        await asyncio.sleep(interval)
        try:
            await step()
        except Exception:
            log.exception(failed)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
