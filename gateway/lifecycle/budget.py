"""The host budget on the running side: containers that run or are starting, never past it.

The control plane refuses a call that would not fit (``gateway.control.budget``); this count is
the one that cannot be talked past, because it is of what runs. Every start of instances
reserves their containers first, every stop gives them back; a start that cannot fit fails with
the limit named, so a state folder holding more than the machine may run (the budget lowered,
or a database from before budgets) brings back what fits after a restart and fails the rest,
instead of flooding the machine again.

Instances that are draining on their way out (the old side of a blue/green update, an endpoint
being deleted, a variant scaled down) still hold their room, but a start that would fit without
them waits for them to go rather than failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from pipelines.errors import TandemError

#: The setting named in every refusal.
SETTING = "TANDEM_MAX_CONTAINERS"


class Instance(Protocol):
    """One copy of a variant's containers (``Instance``)."""

    @property
    def containers(self) -> Sequence[Any]: ...


class BudgetExceeded(TandemError):
    """Starting these instances would run more containers than the host budget allows."""


class ContainerBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Keyed by the instance itself (compared by identity), so a key is never reused.
        self._held: dict[Instance, int] = {}
        self._leaving: set[Instance] = set()
        self._freed = asyncio.Event()

    @property
    def held(self) -> int:
        """Containers running or starting now."""
        return sum(self._held.values())

    async def reserve(self, instances: Sequence[Instance], what: str) -> None:
        """Take room for ``instances`` (waiting for draining ones to go when that is enough);
        ``BudgetExceeded`` when they cannot fit."""
        asked = sum(len(i.containers) for i in instances)
        while True:
            held = self.held
            staying = held - sum(self._held.get(i, 0) for i in self._leaving)
            if staying + asked > self.limit:
                raise BudgetExceeded(
                    f"ResourceLimitExceeded: the host limit 'containers for endpoint usage' "
                    f"({SETTING}) is {self.limit} containers; {staying} run or are starting and "
                    f"{what} needs {asked} more. Delete or shrink other endpoints, or raise "
                    f"{SETTING}."
                )
            if held + asked <= self.limit:
                for instance in instances:
                    self._held[instance] = len(instance.containers)
                return
            freed = self._freed
            await freed.wait()

    def leaving(self, instances: Sequence[Instance]) -> None:
        """``instances`` drain and will stop: a start may wait for their room."""
        self._leaving.update(i for i in instances if i in self._held)

    def release(self, instances: Sequence[Instance]) -> None:
        """``instances`` stopped (or never started): their room is free again."""
        for instance in instances:
            self._held.pop(instance, None)
            self._leaving.discard(instance)
        self._freed.set()
        self._freed = asyncio.Event()
