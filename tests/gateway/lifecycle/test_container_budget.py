"""The running side's count of containers: what fits is taken, what cannot fit fails at once,
what fits once draining instances are gone waits for them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from gateway.lifecycle.budget import BudgetExceeded, ContainerBudget


@dataclass(eq=False)
class Instance:
    containers: list[str] = field(default_factory=lambda: ["one"])


def test_what_fits_is_taken_and_what_does_not_fails_naming_the_limit() -> None:
    async def run() -> None:
        budget = ContainerBudget(3)
        pair, single = Instance(["a", "b"]), Instance()
        await budget.reserve([pair], "endpoint a")
        await budget.reserve([single], "endpoint b")
        assert budget.held == 3
        with pytest.raises(BudgetExceeded) as refused:
            await budget.reserve([Instance()], 'endpoint "c"')
        assert "TANDEM_MAX_CONTAINERS" in str(refused.value)
        assert 'is 3 containers; 3 run or are starting and endpoint "c" needs 1 more' in str(
            refused.value
        )
        budget.release([pair])
        await budget.reserve([Instance(), Instance()], "endpoint c")
        assert budget.held == 3

    asyncio.run(run())


def test_a_start_that_fits_without_draining_instances_waits_for_them() -> None:
    async def run() -> None:
        budget = ContainerBudget(2)
        old = [Instance(), Instance()]
        await budget.reserve(old, "blue")
        budget.leaving(old)
        new = [Instance(), Instance()]
        waiting = asyncio.create_task(budget.reserve(new, "green"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # the old ones still hold their room
        budget.release(old[:1])
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # one is not enough
        budget.release(old[1:])
        await waiting
        assert budget.held == 2
        # Nothing leaving: a start past the limit fails at once instead of waiting.
        with pytest.raises(BudgetExceeded):
            await budget.reserve([Instance()], "more")

    asyncio.run(run())
