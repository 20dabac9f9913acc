"""``gateway.periodic``: an aligned loop runs once per interval, just after each boundary."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.periodic import SETTLE, every, next_boundary


def test_the_next_boundary_is_the_first_multiple_ahead() -> None:
    assert next_boundary(23.0, 10) == 30 + SETTLE
    assert next_boundary(30.0, 10) == 30 + SETTLE  # just closed: its settle is still ahead
    assert next_boundary(30 + SETTLE, 10) == 40 + SETTLE  # at it: the next one
    assert next_boundary(59.99, 60) == 60 + SETTLE
    assert next_boundary(7.3, 0.5) == 7.5 + SETTLE


def test_an_aligned_loop_runs_after_each_boundary_once() -> None:
    interval, seen = 0.2, []

    async def step() -> None:
        seen.append(time.time())
        if len(seen) == 2:
            await asyncio.sleep(interval * 2.5)  # overruns: the boundaries it missed are skipped

    async def main() -> None:
        task = asyncio.create_task(every(interval, step, logging.getLogger("t"), "x", aligned=True))
        deadline = time.monotonic() + 60
        while len(seen) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert len(seen) >= 5
    slots = [int((t - SETTLE) // interval) for t in seen]
    assert slots == sorted(set(slots))  # no interval runs twice
    assert slots[2] - slots[1] >= 3  # the overrun's boundaries were skipped, not run late in a row
