"""Inference components' copies, placed on an endpoint's instances by their reservations.

An endpoint for components runs no containers of its own: its variants' instances are room
(``TANDEM_INSTANCE_CPUS`` cores and ``TANDEM_INSTANCE_MEMORY_MB`` each) that copies reserve.
A copy is an ``Instance`` of the component's containers under its own supervisor, reserved in
the host budget like any other (``ContainerBudget``); the copies that run are the component's
``Variant`` in ``LiveEndpoint.components``, so the invocation core chooses among them with the
same router as among a variant's instances. A copy goes to the instance with the fewest copies
among those with room (spread); what has no room stays pending with the reason (describe's
``FailureReason``), or, with ``ManagedInstanceScaling`` enabled, adds an instance up to
``MaxInstanceCount``. Copies are stopped only once their requests are answered, and what waits
for room is looked at again whenever copies of the endpoint stop.

A copy's ``MaxMemoryRequiredInMb`` is the docker backend's memory limit; a process is watched
(``WATCH_EVERY``) and a copy past it is logged with the reason and shown in ``view``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Mapping
from typing import Any, Protocol

from gateway.folders import endpoint_dir
from gateway.lifecycle.backends.base import Backend
from gateway.lifecycle.budget import ContainerBudget
from gateway.lifecycle.keyed import KeyedWork
from gateway.lifecycle.placement import Copy, Placement
from gateway.lifecycle.supervisor import Supervisor, raise_start_errors
from gateway.live import Variant
from gateway.serving.held import component_key
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import ComponentRecord, ComponentStatus, EndpointStatus, StateStore, WrongState
from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec

logger = logging.getLogger("tandem.components")

#: Seconds between two looks at the copies' memory (processes have no limit of their own).
WATCH_EVERY = 2.0
#: How often a component waits for its endpoint to serve, and a drain for its requests.
POLL = 0.05
MAX_REASON = 1024


class CopySpecs(Protocol):
    """What a copy runs (the control plane: ``ControlPlane.copy_spec``)."""

    def copy_spec(self, component: ComponentRecord, *, pending: bool = False) -> EndpointSpec: ...


class ComponentRunner:
    def __init__(
        self,
        store: StateStore,
        plane: DataPlane,
        backend: Backend,
        settings: GatewaySettings,
        specs: CopySpecs,
        budget: ContainerBudget,
    ) -> None:
        self._store, self._table, self._backend = store, plane.table, backend
        self._settings, self._specs, self._budget = settings, specs, budget
        self._dispatcher, self._metrics = plane.dispatcher, plane.metrics
        self._held = plane.held
        self._placement = Placement(settings.instance_capacity)
        self._copies: dict[str, list[Copy]] = {}
        self._pending: dict[str, str] = {}
        self._work = KeyedWork(self._reconcile, "component")
        self._watch: asyncio.Task[None] | None = None

    # ---- what the control plane calls ------------------------------------------------------

    def kick(self, component: str) -> None:
        if self._work.closing:
            return
        self._work.kick(component.lower())
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_memory())

    def view(self, component: str) -> Mapping[str, Any] | None:
        """What runs of ``component``: its copies (where, reserving what), why some wait."""
        copies = self._copies.get(component.lower(), [])
        return {
            "current": sum(1 for c in copies if c.instance.healthy),
            "pending": self._pending.get(component.lower()),
            "copies": [
                {
                    "copy": c.instance.deployment,
                    "instance": f"{c.host.variant}/{c.host.index}",
                    "state": "InService" if c.instance.healthy else "Restarting",
                    "cores": c.reservation.cores,
                    "memory_mb": c.reservation.memory_mb,
                    "max_memory_mb": c.reservation.max_memory_mb,
                    **({"warning": c.warning} if c.warning else {}),
                }
                for c in copies
            ],
        }

    def instances(self, endpoint: str) -> dict[str, int]:
        """Instances per variant of an endpoint for components (``ManagedInstanceScaling``)."""
        return self._placement.instances(endpoint)

    def restore(self) -> None:
        for record in self._store.components():
            self.kick(record.name)

    async def settled(self) -> None:
        await self._work.settled()

    async def close(self) -> None:
        await self._work.close()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        copies = [c for group in self._copies.values() for c in group]
        self._copies.clear()
        await self._stop(copies)

    # ---- the work --------------------------------------------------------------------------

    async def _reconcile(self, name: str) -> None:
        record = self._store.get_component(name)
        if record is None or record.status in (ComponentStatus.DELETING, ComponentStatus.FAILED):
            await self._scale_to(name, record, 0)
            self._pending.pop(name, None)
            if record is not None and record.status is ComponentStatus.DELETING:
                self._store.remove_component(name)
                logger.info("%s: deleted", record.name)
            return
        if not await self._endpoint_serves(record):
            with contextlib.suppress(WrongState):
                self._store.set_component_status(
                    name,
                    ComponentStatus.FAILED,
                    f'Endpoint "{record.endpoint}" is not InService.',
                    expect={ComponentStatus.CREATING, ComponentStatus.UPDATING},
                )
            return
        try:
            if record.pending_model is not None:
                await self._roll(record)
            else:
                await self._scale_to(name, record, record.copies)
        except Exception as exc:
            reason = _reason(exc)
            logger.warning("%s: %s", record.name, reason)
            if record.status is ComponentStatus.CREATING:
                with contextlib.suppress(WrongState):
                    self._store.set_component_status(
                        name, ComponentStatus.FAILED, reason, expect={ComponentStatus.CREATING}
                    )
            else:
                with contextlib.suppress(WrongState):
                    self._store.finish_component_update(name, reason)
            return
        if record.status is ComponentStatus.CREATING:
            with contextlib.suppress(WrongState):
                self._store.set_component_status(
                    name, ComponentStatus.IN_SERVICE, expect={ComponentStatus.CREATING}
                )
        elif record.status is ComponentStatus.UPDATING:
            with contextlib.suppress(WrongState):
                self._store.finish_component_update(name)

    async def _endpoint_serves(self, record: ComponentRecord) -> bool:
        """Wait until the component's endpoint serves; False once it never will."""
        while self._table.get(record.endpoint) is None:
            endpoint = self._store.get_endpoint(record.endpoint)
            if endpoint is None or endpoint.status in (
                EndpointStatus.FAILED,
                EndpointStatus.DELETING,
            ):
                return False
            await asyncio.sleep(POLL)
        return True

    async def _scale_to(self, name: str, record: ComponentRecord | None, count: int) -> None:
        """Run ``count`` copies of the component (fewer, with a reason, when there is no room)."""
        have = self._copies.get(name, [])
        if count < len(have):
            keep, gone = have[:count], have[count:]
            self._serve(name, record, keep)
            await self._drain(gone)
            await self._stop(gone)
            if record is not None:
                self._waiting_again(record.endpoint, name)
            return
        assert record is not None or count == 0
        if record is None:
            return
        spec = self._specs.copy_spec(record)
        placed, reason = self._placement.place(
            record, self._config(record), spec, count - len(have)
        )
        if reason is None:
            self._pending.pop(name, None)
        else:
            self._pending[name] = reason
            logger.info("%s: %s", record.name, reason)
        if placed:
            await self._start(record, placed)
        self._serve(name, record, [*self._copies.get(name, []), *placed], spec)

    async def _roll(self, record: ComponentRecord) -> None:
        """A new specification, blue/green: its copies start beside the old ones, take the
        traffic in one swap, and the old ones stop once their requests are answered."""
        name = record.name.lower()
        spec = self._specs.copy_spec(record, pending=True)
        placed, reason = self._placement.place(
            record, self._config(record), spec, record.copies, pending=True
        )
        if reason is not None:
            self._placement.unplace(placed)
            raise TandemError(f"Cannot roll out the new specification: {reason}")
        await self._start(record, placed)
        old = self._copies.get(name, [])
        self._copies[name] = []
        self._serve(name, record, placed, spec)
        await self._drain(old)
        await self._stop(old)
        self._waiting_again(record.endpoint, name)

    def _serve(
        self,
        name: str,
        record: ComponentRecord | None,
        copies: list[Copy],
        spec: EndpointSpec | None = None,
    ) -> None:
        """The copies that answer from now on (one swap of the endpoint's components)."""
        self._copies[name] = copies
        if record is None:
            return
        live = self._table.get(record.endpoint)
        if live is None:
            return
        if record.status in (ComponentStatus.DELETING, ComponentStatus.FAILED):
            live.components = {k: v for k, v in live.components.items() if k != record.name}
            self._held.notify(component_key(record.name))  # held requests find it gone
            return
        current = live.components.get(record.name)
        spec = spec or (current.spec if current is not None else self._specs.copy_spec(record))
        variant = Variant(spec, [c.instance for c in copies])
        live.components = {**live.components, record.name: variant}
        if copies:  # requests held for a copy look again
            self._held.notify(component_key(record.name))

    def _config(self, record: ComponentRecord) -> Mapping[str, Any]:
        """The config the component's endpoint runs (its variants' instances)."""
        endpoint = self._store.get_endpoint(record.endpoint)
        return endpoint.deployed.request if endpoint and endpoint.deployed else {}

    def _waiting_again(self, endpoint: str, but: str) -> None:
        """Room was freed on ``endpoint``: its components with copies waiting try again."""
        for record in self._store.components(endpoint):
            if record.name.lower() != but and record.name.lower() in self._pending:
                self.kick(record.name)

    # ---- starting and stopping copies ------------------------------------------------------

    async def _start(self, record: ComponentRecord, copies: list[Copy]) -> None:
        instances = [c.instance for c in copies]
        try:
            await self._budget.reserve(instances, f'inference component "{record.name}"')
        except BaseException:
            self._placement.unplace(copies)
            raise
        for copy in copies:
            copy.supervisor = Supervisor([copy.instance], self._backend, self._settings)
        starts = [c.supervisor.start(reap=False) for c in copies if c.supervisor is not None]
        results = await asyncio.gather(*starts, return_exceptions=True)
        try:
            raise_start_errors(results)
        except BaseException:
            await self._stop(copies)
            raise

    async def _drain(self, copies: list[Copy]) -> None:
        """Wait for the requests already on ``copies`` (bounded by their timeout)."""
        self._budget.leaving([c.instance for c in copies])
        for copy in copies:
            deadline = time.monotonic() + copy.instance.spec.timeout + 1.0
            while copy.instance.inflight > 0 and time.monotonic() < deadline:
                await asyncio.sleep(POLL)

    async def _stop(self, copies: list[Copy]) -> None:
        for copy in copies:
            await self._dispatcher.retire(copy.instance)
        supervisors = [c.supervisor for c in copies if c.supervisor is not None]
        await asyncio.gather(*(s.stop(reap=False) for s in supervisors), return_exceptions=True)
        self._budget.release([c.instance for c in copies])
        self._placement.unplace(copies)
        for copy in copies:
            self._metrics.forget(copy.instance)
            folder = endpoint_dir(self._settings.state_dir, copy.instance.name)
            target = folder / copy.instance.deployment
            await asyncio.to_thread(shutil.rmtree, target, True)

    async def _watch_memory(self) -> None:
        """Processes have no memory limit: a copy past its ``MaxMemoryRequiredInMb`` is logged
        with the reason (once each time it goes over) and shown in ``view``."""
        while not self._work.closing:
            await asyncio.sleep(WATCH_EVERY)
            watched = [
                c
                for group in self._copies.values()
                for c in group
                if c.reservation.max_memory_mb is not None
            ]
            if watched:  # reading process trees takes a while: not on the event loop
                used = await asyncio.to_thread(_memories, watched)
                for copy, value in zip(watched, used, strict=True):
                    _judge(copy, value)


def _memories(copies: list[Copy]) -> list[int]:
    return [_memory(c) for c in copies]


def _memory(copy: Copy) -> int:
    """Resident bytes of a copy's containers (their process trees), 0 for those not running."""
    return sum(
        (c.handle.memory() or 0) if c.handle is not None else 0 for c in copy.instance.containers
    )


def _judge(copy: Copy, used: int) -> None:
    """Log (once per time over) a copy using more than its ``MaxMemoryRequiredInMb``."""
    most = copy.reservation.max_memory_mb
    if most is None or used <= most * 1024**2:
        copy.warning = None
        return
    if copy.warning is None:
        copy.warning = f"uses {used // 1024**2} MiB, over its MaxMemoryRequiredInMb ({most} MiB)"
        logger.warning("%s: copy %s %s", copy.component, copy.instance.deployment, copy.warning)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TandemError):
        text = str(exc)
    else:
        logger.error("unexpected %s", type(exc).__name__, exc_info=exc)
        text = f"An internal error occurred while placing copies ({type(exc).__name__})."
    return text[:MAX_REASON]
