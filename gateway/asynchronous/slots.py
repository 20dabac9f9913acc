"""The workers' slots: how many requests of each endpoint call its containers, how many are
recording their ends, and which endpoints have nothing waiting.

A slot is the container's (MaxConcurrentInvocationsPerInstance counts calls to it): a request
takes one from its claim, or from its acceptance when it goes straight to a worker, and frees it
once the container has answered, before its end is committed. As many again may be recording
their ends; beyond that, claims wait (a stalled disk stops new work rather than fill memory).

An endpoint is *empty* while nothing of it is ``Queued``: its last claim found less than it had
room for, and no ``Queued`` row was accepted (or put back) during or since that claim. Only then
does a new request skip the queue (``gateway.asynchronous.worker.Workers.admit``), so each
endpoint's requests still start in the order they were accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.live import LiveEndpoint
from gateway.state import QueuedInvocation


def capacity(live: LiveEndpoint) -> int:
    """How many of the endpoint's requests may run at once."""
    config = live.spec.async_inference
    per_instance = config.max_concurrent_invocations_per_instance if config else 1
    instances = sum(len(v.instances) for v in live.variants)
    return per_instance * max(instances, 1)


class Slots:
    """Per endpoint: requests calling it, requests ending, and whether nothing waits."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.ending: dict[str, int] = {}
        self._empty: set[str] = set()
        #: ``Queued`` rows being accepted (or put back) now, and how many ever were.
        self._queueing: dict[str, int] = {}
        self._queued: dict[str, int] = {}

    def room(self, live: LiveEndpoint) -> int:
        """Requests of ``live`` that may start now."""
        limit = capacity(live)
        ending = self.ending.get(live.name, 0)
        return limit - self.running.get(live.name, 0) - max(0, ending - limit)

    def empty(self, endpoint: str) -> bool:
        return endpoint in self._empty

    def admit(self, endpoint: str, live: LiveEndpoint | None) -> bool:
        """A slot for a request being accepted, when ``live`` (None: not serving) has instances,
        room and nothing waiting; else it is noted as being queued (``queued`` after)."""
        if (
            live is not None
            and endpoint in self._empty
            and any(v.instances for v in live.variants)
            and self.room(live) > 0
        ):
            self.take(endpoint)
            return True
        self.queueing(endpoint)
        return False

    def take(self, endpoint: str) -> None:
        self.running[endpoint] = self.running.get(endpoint, 0) + 1

    def called(self, endpoint: str) -> None:
        """A request's call is over: its slot is free, its end being recorded."""
        self.running[endpoint] -= 1
        self.ending[endpoint] = self.ending.get(endpoint, 0) + 1

    def done(self, endpoint: str, *, called: bool) -> None:
        if called:
            self.ending[endpoint] -= 1
        else:
            self.running[endpoint] -= 1

    def queueing(self, endpoint: str) -> None:
        """A ``Queued`` row of ``endpoint`` is being written: it is not empty (``queued`` when
        the write is over, committed or not)."""
        self._empty.discard(endpoint)
        self._queueing[endpoint] = self._queueing.get(endpoint, 0) + 1
        self._queued[endpoint] = self._queued.get(endpoint, 0) + 1

    def queued(self, endpoint: str) -> None:
        self._queueing[endpoint] -= 1

    def before_claim(self, free: Mapping[str, int]) -> dict[str, int]:
        """What ``after_claim`` compares: endpoints with no ``Queued`` row being written now."""
        return {e: self._queued.get(e, 0) for e in free if not self._queueing.get(e, 0)}

    def after_claim(
        self, free: Mapping[str, int], before: Mapping[str, int], taken: Sequence[QueuedInvocation]
    ) -> None:
        """An endpoint is empty when the claim took less than its room and no ``Queued`` row
        was written at any moment of it (one committed after it would have been missed)."""
        claimed: dict[str, int] = {}
        for row in taken:
            claimed[row.endpoint] = claimed.get(row.endpoint, 0) + 1
        for endpoint, room in free.items():
            if room <= 0:
                continue
            same = before.get(endpoint) == self._queued.get(endpoint, 0)
            if claimed.get(endpoint, 0) < room and same:
                self._empty.add(endpoint)
            else:
                self._empty.discard(endpoint)
