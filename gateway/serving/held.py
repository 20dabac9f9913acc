"""Requests held while what they need has no capacity: a variant at zero instances (or, for
inference components, a component at zero copies) starting one.

The serving core asks ``wait(key, deadline)`` after it found no instance for ``key`` (an
Application Auto Scaling resource id, ``endpoint/<e>/variant/<v>``); whoever brings capacity
(the reconciler, once new instances take traffic) calls ``notify(key)``. ``want(key)`` says
capacity is needed without holding anything (each held request, the asynchronous queue at zero):
the listeners (the autoscaling evaluator, the NoCapacityInvocationFailures metric) hear it at
once, so a variant at zero does not wait a whole evaluation interval to start. Bounded twice:
at most ``limit`` requests wait per key (more is ``HeldFull`` at once), each until its deadline.
Everything runs on the event loop: no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("tandem.held")

#: Told ``(key, request)`` when ``key`` wants capacity; ``request``: a request is held for it.
Listener = Callable[[str, bool], None]


class HeldFull(Exception):
    """``key`` already holds as many requests as it may."""


def variant_key(endpoint: str, variant: str) -> str:
    """The key of an endpoint's variant: its Application Auto Scaling resource id."""
    return f"endpoint/{endpoint}/variant/{variant}"


def component_key(component: str) -> str:
    """The key of an inference component: its Application Auto Scaling resource id."""
    return f"inference-component/{component}"


def component_of(key: str) -> str | None:
    """The component of a ``component_key``; None for another kind of key."""
    kind, _, name = key.partition("/")
    return name if kind == "inference-component" and name else None


def variant_of(key: str) -> tuple[str, str] | None:
    """(endpoint, variant) of a ``variant_key``; None for another kind of key."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant":
        return parts[1], parts[3]
    return None


class Held:
    def __init__(self, limit: int, wait: float) -> None:
        #: Requests held per key at most, and the seconds each may wait.
        self.limit, self.wait_seconds = limit, wait
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        #: When each key last wanted capacity (``time.monotonic``).
        self._wanted: dict[str, float] = {}
        self.listeners: list[Listener] = []
        #: Shutting down: nothing is held any more (``close``).
        self.closed = False

    def want(self, key: str, *, request: bool = True) -> None:
        """Capacity is needed for ``key`` (``request``: a request came for it; else a queue
        waits): tell the listeners (a listener's failure is logged)."""
        self._wanted[key] = time.monotonic()
        for listener in self.listeners:
            try:
                listener(key, request)
            except Exception:
                log.exception("a listener of held requests failed on %s", key)

    def wanted(self, key: str, within: float) -> bool:
        """Whether ``key`` held a request or wanted capacity in the last ``within`` seconds."""
        if self._waiters.get(key):
            return True
        return time.monotonic() - self._wanted.get(key, float("-inf")) <= within

    def waiting(self, key: str) -> int:
        return len(self._waiters.get(key, ()))

    async def wait(self, key: str, deadline: float) -> bool:
        """Hold until ``notify(key)`` (True) or ``deadline`` (``time.monotonic``; False).

        The caller looks at its capacity again after a True: a notify says only that it
        changed. Raises ``HeldFull`` when ``limit`` requests already wait on ``key``.
        """
        if self.closed:
            return False
        waiters = self._waiters.setdefault(key, set())
        if len(waiters) >= self.limit:
            raise HeldFull(key)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, max(deadline - time.monotonic(), 0.0))
            return future.done() and not future.cancelled() and not self.closed
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(key, None)

    def notify(self, key: str) -> None:
        """``key`` has capacity now (or it changed): every request it holds looks again."""
        for future in self._waiters.get(key, ()):
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        """The gateway stops: what is held is let go now (and throttled), nothing more waits."""
        self.closed = True
        for key in list(self._waiters):
            self.notify(key)
