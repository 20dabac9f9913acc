"""Background loops that run a step every so many seconds until cancelled.

The alarms, the metric flusher and the autoscaling evaluator each run one; a step that fails is
logged and the next still comes, since one bad evaluation or a full disk must not end the loop.

The alarms and the evaluator judge complete periods of the metric store (10 s, 60 s): their
loops are *aligned*, so each step runs just after a multiple of the interval on the wall clock,
that is just after a period closes, rather than up to a whole interval later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

#: Seconds an aligned step waits past the boundary: an event stamped just before it (by
#: another thread, between its clock read and its append) is recorded by then.
SETTLE = 0.05


async def every(
    interval: float, step: Callable[[], Awaitable[object]], log: logging.Logger, failed: str,
    *, aligned: bool = False,
) -> None:  # fmt: skip
    """Run ``step`` every ``interval`` seconds, forever; a step's error is logged as ``failed``.
    ``aligned``: at each multiple of ``interval`` on the wall clock (plus ``SETTLE``); a step that
    overruns skips the boundaries it missed. Otherwise ``interval`` after the last step ends."""
    due = next_boundary(time.time(), interval) if aligned else 0.0
    while True:
        await asyncio.sleep(max(due - time.time(), 0.0) if aligned else interval)
        try:
            await step()
        except Exception:
            log.exception(failed)
        if aligned:
            due += interval
            if due <= time.time():
                due = next_boundary(time.time(), interval)


def next_boundary(now: float, interval: float, settle: float = SETTLE) -> float:
    """The first multiple of ``interval`` plus ``settle`` that is still ahead of ``now``."""
    return (math.floor((now - settle) / interval) + 1) * interval + settle


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
