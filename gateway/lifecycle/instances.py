"""Instances start and stop here: each under its own supervisor, inside the host budget, its
model managers made once it answers ``/ping`` and retired before it stops.

The reconciler decides what runs (which config, how many instances, when traffic moves); this
is how one set of instances comes and goes, so a scale-out, an update's new fleet and a rolling
batch start the same way, and shutdown can cancel every start in progress at once.
"""

from __future__ import annotations

import asyncio
import time

from gateway.capture import CaptureWriter
from gateway.lifecycle.backends.base import Backend
from gateway.lifecycle.budget import ContainerBudget
from gateway.lifecycle.fleet import Deployment
from gateway.lifecycle.supervisor import Supervisor, raise_start_errors
from gateway.live import Instance, LiveEndpoint
from gateway.multimodel.hosting import close_all, make_managers, preload_all
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings

#: How often draining looks at the requests still in flight.
DRAIN_POLL = 0.01


class InstanceRunner:
    def __init__(self, plane: DataPlane, backend: Backend, settings: GatewaySettings) -> None:
        self._backend = backend
        self._settings = settings
        self._dispatcher = plane.dispatcher
        self._metrics = plane.metrics
        self.closing = False
        #: The running side's count of containers (shared with the transform jobs).
        self.budget = ContainerBudget(settings.container_budget)
        #: The instance starts in progress: shutdown cancels them.
        self._starts: set[asyncio.Future[list[BaseException | None]]] = set()

    def stop_restarting(self) -> None:
        """Shutdown: no new start; those in progress stop at once (each stops what it began)."""
        self.closing = True
        for start in list(self._starts):
            start.cancel()

    async def start(self, deployment: Deployment, instances: list[Instance]) -> None:
        """Start ``instances`` side by side, each under its own supervisor, until all pass
        ``/ping`` and their pinned models are loaded; the caller stops them on failure."""
        if self.closing:
            raise asyncio.CancelledError  # shutting down: the state says to start it next time
        await self.budget.reserve(instances, f'endpoint "{deployment.runtime.name}"')
        began = time.monotonic()
        started = {i: Supervisor([i], self._backend, self._settings) for i in instances}
        deployment.supervisors.update(started)
        starts = asyncio.gather(
            *(s.start(reap=False) for s in started.values()), return_exceptions=True
        )
        self._starts.add(starts)
        try:
            results = await starts
        finally:
            self._starts.discard(starts)
        raise_start_errors(results)
        cloudwatch = self._metrics.cloudwatch
        if cloudwatch is not None:  # ModelSetupTime: from the start to the first healthy /ping
            setup_us = int((time.monotonic() - began) * 1e6)
            for instance in instances:
                cloudwatch.model_setup(instance.name, instance.variant, setup_us)
        managers = make_managers(
            instances, self._settings, self._dispatcher.upstream, self._metrics
        )
        self._dispatcher.host_models(managers)
        await preload_all(managers.values())

    async def drain(self, endpoint: LiveEndpoint | Instance) -> None:
        """Wait for the requests already in ``endpoint`` (bounded by its own timeout); its
        inference components' copies are the component runner's, and stay."""
        if isinstance(endpoint, LiveEndpoint):
            own = [i for v in (*endpoint.variants, *endpoint.shadows) for i in v.instances]
        else:
            own = [endpoint]
        self.budget.leaving(own)
        deadline = time.monotonic() + endpoint.spec.timeout + 1.0
        while any(i.inflight for i in own) and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL)

    async def stop_all(self, deployment: Deployment) -> None:
        """Every instance of ``deployment``, then its data capture (its requests are answered:
        every record is in the buffer)."""
        await self.stop(deployment, list(deployment.supervisors))
        writer = deployment.runtime.capture
        if isinstance(writer, CaptureWriter):
            deployment.runtime.capture = None
            await writer.aclose()

    async def stop(self, deployment: Deployment, instances: list[Instance]) -> None:
        managers = []
        for instance in instances:
            managers += await self._dispatcher.retire(instance)
        await close_all(managers)
        supervisors = [
            deployment.supervisors.pop(i) for i in instances if i in deployment.supervisors
        ]
        await asyncio.gather(*(s.stop(reap=False) for s in supervisors), return_exceptions=True)
        self.budget.release(instances)
        for instance in instances:
            self._metrics.forget(instance)
