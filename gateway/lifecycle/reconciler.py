"""What runs follows what the state says: endpoints created, updated and deleted while serving.

The control plane writes the desired state (an endpoint ``Creating``, ``Updating`` towards a new
config, ``Deleting``) and calls ``kick``; the reconciler then starts or stops containers and
reports back into the state (``InService``, ``Failed`` with a reason, or the row removed). Work
for one endpoint runs one step at a time; a kick during a step makes it look again after.

An update is blue/green: the new config's containers start beside the old ones (in the other of
the endpoint's two folders) and must pass ``/ping``; then one swap of the endpoint table moves
traffic, requests in flight on the old containers finish, and the old containers stop. With a
``DeploymentConfig`` the traffic moves in steps first, watched by alarms, and may move back
(``gateway.lifecycle.deployment``). A new config that fails to start leaves the old one serving,
with ``FailureReason`` set.

Every start reserves its containers in the host budget first (``ContainerBudget``) and fails,
naming the limit, when they cannot fit; shutdown (``stop_restarting``) cancels the starts in
progress at once, and each stops what it had started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.capture import CaptureWriter
from gateway.deployment_policy import AlarmReader
from gateway.folders import remove_endpoint
from gateway.lifecycle.backends.base import Backend
from gateway.lifecycle.deployment import Guardrails
from gateway.lifecycle.fleet import Deployment, Specs
from gateway.lifecycle.instances import InstanceRunner
from gateway.lifecycle.keyed import KeyedWork
from gateway.lifecycle.reasons import reason_of
from gateway.lifecycle.rolling import first_batch, roll
from gateway.limits import fair_limits
from gateway.live import (
    Instance,
    LiveEndpoint,
    Variant,
    build_live,
    deployment_name,
)
from gateway.serving.held import variant_key
from gateway.serving.metric_calls import report_instances
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state import EndpointStatus, StateStore, WrongState

logger = logging.getLogger("tandem.reconciler")


class Reconciler:
    def __init__(
        self,
        store: StateStore,
        plane: DataPlane,
        backend: Backend,
        settings: GatewaySettings,
        specs: Specs,
        *,
        alarms: AlarmReader | None = None,
    ) -> None:
        """``specs.spec_for(endpoint, config)`` is the spec that runs ``config`` under that name;
        what starts goes into ``plane`` (its table, clients, model managers and metrics);
        ``alarms`` are what a guarded update watches."""
        self._store = store
        self._table = plane.table
        self._settings = settings
        self._specs = specs
        self._held = plane.held
        self._metrics = plane.metrics
        self._live: dict[str, Deployment] = {}
        self._work = KeyedWork(self._reconcile, "endpoint")
        self._instances = InstanceRunner(plane, backend, settings)
        #: The running side's count of containers (shared with the transform jobs).
        self.budget = self._instances.budget
        #: Updates with a DeploymentConfig: their traffic shifts, baking and rollbacks.
        self.guardrails = Guardrails(store, alarms, plane.metrics.registry)

    # ---- what the control plane calls ------------------------------------------------------

    def kick(self, endpoint: str) -> None:
        """The desired state of ``endpoint`` changed: bring what runs in line, in the background."""
        self._work.kick(endpoint)

    def restore(self) -> None:
        """After a (re)start: look at every endpoint the state holds."""
        for record in self._store.endpoints():
            self.kick(record.name)

    async def settled(self, endpoints: list[str]) -> None:
        """Wait until no work is pending or running for ``endpoints``."""
        await self._work.settled(endpoints)

    def stop_restarting(self) -> None:
        """Shutdown has begun: a container that ends now is not restarted, and the starts in
        progress stop at once (each stops what it had started)."""
        self._work.closing = True
        self._instances.stop_restarting()
        for deployment in self._live.values():
            for supervisor in deployment.supervisors.values():
                supervisor.stop_restarting()

    async def close(self) -> None:
        """Shutdown: no new work; what runs is cancelled; every deployment stops."""
        await self._work.close()
        live, self._live = list(self._live.values()), {}
        for deployment in live:
            self._table.remove(deployment.runtime.name)
        await asyncio.gather(*(self._stop(d) for d in live), return_exceptions=True)

    # ---- the work ------------------------------------------------------------------------------

    async def _reconcile(self, name: str) -> None:
        record = self._store.get_endpoint(name)
        live = self._live.get(name)
        if record is None or record.status is EndpointStatus.DELETING:
            if live is not None:
                await self._retire(live)
            if record is not None:
                # Nothing of it runs now: its folders go before its row (a crash between the
                # two deletes again at the next start), so a new endpoint of that name starts
                # clean.
                await asyncio.to_thread(remove_endpoint, self._settings.state_dir, record.name)
                self._store.remove_endpoint(name)
                logger.info("%s: deleted", name)
            return
        if record.status is EndpointStatus.FAILED:
            if live is not None:
                await self._retire(live)
            return
        # After a restart in the middle of a guarded update: rolled back (why) or completed.
        reason = self.guardrails.recover(record) if live is None and record.rollout else None
        if reason is not None:
            record = self._store.get_endpoint(name) or record
        if live is None or live.config != record.config:
            # Creating, or brought back after a restart (InService, or Updating: the old config
            # serves again first, then the update is tried once more).
            started = await self._start_or_fail(name, record.config)
            if started is None:
                return
            if live is not None:
                await self._replace(live, started)
            else:
                self._serve(started)
            live = started
            with contextlib.suppress(WrongState):
                self._store.set_endpoint_status(
                    name,
                    EndpointStatus.IN_SERVICE,
                    reason or None,
                    expect={EndpointStatus.CREATING, EndpointStatus.IN_SERVICE},
                )
        if record.status is EndpointStatus.UPDATING and record.pending_config is not None:
            await self._update(live, record.pending_config)
        elif record.status is EndpointStatus.UPDATING:
            await self._resize(live, record.desired)

    async def _start_or_fail(self, name: str, config: str) -> Deployment | None:
        try:
            return await self._start(name, config)
        except Exception as exc:
            reason = reason_of(exc)
            logger.warning("%s: cannot start config %s: %s", name, config, reason)
            with contextlib.suppress(WrongState):
                self._store.set_endpoint_status(
                    name,
                    EndpointStatus.FAILED,
                    reason,
                    expect={EndpointStatus.CREATING, EndpointStatus.IN_SERVICE},
                )
            return None

    async def _update(self, live: Deployment, config: str) -> None:
        name = live.runtime.name
        try:
            record = self._store.get_endpoint(name)
            counts = first_batch(record, self._specs.spec_for(name, config))
            started = await self._start(name, config, beside=live, counts=counts)
        except Exception as exc:
            reason = reason_of(exc)
            logger.warning(
                "%s: update to %s failed, staying on %s: %s", name, config, live.config, reason
            )
            with contextlib.suppress(WrongState):
                self._store.rollback_update(name, reason)
            return
        try:
            moved_back = None
            if record is not None and counts is not None:
                moved_back = await roll(self.guardrails, record, live, started, self._scale)
            elif record is not None and record.rollout:
                moved_back = await self.guardrails.run(record, live.runtime, started.runtime)
            if moved_back is not None:  # no new request reaches the new fleet now
                self._store.rollback_update(name, moved_back)
                await self._retire(started)
                return
            self._store.finish_update(name)
        except WrongState:
            # Deleted (or rolled back) while the new containers started or took a share.
            await self._retire(started)
            return
        except BaseException:  # shutdown while it shifted: the state says where it was
            await self._stop(started)
            raise
        await self._replace(live, started)
        logger.info("%s: now serving config %s", name, config)

    async def _start(
        self,
        name: str,
        config: str,
        *,
        beside: Deployment | None = None,
        counts: dict[str, int] | None = None,
    ) -> Deployment:
        """Start ``config``'s containers and wait until they pass ``/ping`` (not serving yet);
        ``counts``: instances per variant instead of the config's (a rolling update's batch)."""
        spec = self._specs.spec_for(name, config)
        record = self._store.get_endpoint(name)
        # Weights and counts asked for after the config was made hold while it serves (a
        # restart brings them back); an update, even to the same config, runs its own counts.
        serving = beside is None and record is not None and record.config == config
        desired = record.desired if serving and record is not None else {}
        # Blue/green: an update runs in the other of the endpoint's two folders.
        folder = name if beside is None or beside.runtime.folder != name else f"{name}.1"
        if not spec.all_containers:  # for inference components: their copies run apart
            return Deployment(LiveEndpoint(spec=spec, variants=[], folder=name), config)
        endpoint = build_live(
            spec,
            self._settings.state_dir,
            folder=folder,
            counts=counts or {v: int(d["count"]) for v, d in desired.items() if "count" in d},
            weights={v: float(d["weight"]) for v, d in desired.items() if "weight" in d},
        )
        deployment = Deployment(endpoint, config)
        try:
            await self._instances.start(deployment, endpoint.runtimes)
        except BaseException:
            await self._stop(deployment)
            raise
        capture = spec.data_capture
        if capture is not None and capture.enable_capture:
            writer = CaptureWriter(
                name,
                capture,
                destination=spec.resolve(capture.destination),
                s3_endpoint_url=self._settings.s3_endpoint_url,
            )
            writer.start()
            endpoint.capture = writer
        return deployment

    async def _resize(self, live: Deployment, desired: dict[str, dict[str, float]]) -> None:
        """UpdateEndpointWeightsAndCapacities: weights move in one step, instances are added
        (started and healthy before they take traffic) or drained and stopped."""
        name = live.runtime.name
        live.runtime.set_weights(
            {v: float(d["weight"]) for v, d in desired.items() if "weight" in d}
        )
        counts = {v: int(d["count"]) for v, d in desired.items() if "count" in d}
        variants = [v for v in (*live.runtime.variants, *live.runtime.shadows) if v.name in counts]
        # Shrink first: the budget room they free may be what the growing ones need.
        variants.sort(key=lambda v: counts[v.name] - len(v.instances))
        try:
            for variant in variants:
                await self._scale(live, variant, counts[variant.name])
        except Exception as exc:
            reason = reason_of(exc)
            logger.warning("%s: changing instance counts failed: %s", name, reason)
            with contextlib.suppress(WrongState):
                self._store.set_endpoint_status(
                    name, EndpointStatus.IN_SERVICE, reason, expect={EndpointStatus.UPDATING}
                )
            return
        with contextlib.suppress(WrongState):
            self._store.finish_resize(name)

    async def _scale(self, live: Deployment, variant: Variant, count: int) -> None:
        have = len(variant.instances)
        if count > have:
            names = [
                deployment_name(live.runtime.folder, live.runtime.spec, variant.name, i)
                for i in range(have, count)
            ]
            limits = fair_limits([(n, variant.spec) for n in names], self._settings.state_dir)
            added = [Instance.from_spec(variant.spec, limits.get(n), deployment=n) for n in names]
            try:
                await self._instances.start(live, added)
            except BaseException:
                await self._instances.stop(live, added)
                raise
            variant.instances = [*variant.instances, *added]
            self._held.notify(variant_key(live.runtime.name, variant.name))
            report_instances(self._metrics.cloudwatch, live.runtime)
        elif count < have:
            gone = variant.instances[count:]
            variant.instances = variant.instances[:count]
            report_instances(self._metrics.cloudwatch, live.runtime)
            for instance in gone:
                await self._drain(instance)
            await self._instances.stop(live, gone)

    def _serve(self, deployment: Deployment) -> None:
        self._live[deployment.runtime.name] = deployment
        old = self._table.get(deployment.runtime.name)
        if old is not None and old is not deployment.runtime:
            # Inference components' copies run beside the endpoint's own containers, under
            # the component runner: the new deployment serves them as the old one did.
            deployment.runtime.components = old.components
        self._table.put(deployment.runtime)
        for variant in deployment.runtime.variants:  # requests held for it look again
            self._held.notify(variant_key(deployment.runtime.name, variant.name))
        report_instances(self._metrics.cloudwatch, deployment.runtime)

    async def _replace(self, old: Deployment, new: Deployment) -> None:
        """One swap moves traffic to ``new``; ``old`` stops once its requests are answered."""
        self._serve(new)
        await self._drain(old.runtime)
        await self._stop(old)

    async def _retire(self, deployment: Deployment) -> None:
        name = deployment.runtime.name
        if self._live.get(name) is deployment:
            del self._live[name]
        if self._table.get(name) is deployment.runtime:
            self._table.remove(name)
        await self._drain(deployment.runtime)
        await self._stop(deployment)

    async def _drain(self, endpoint: LiveEndpoint | Instance) -> None:
        await self._instances.drain(endpoint)

    async def _stop(self, deployment: Deployment) -> None:
        await self._instances.stop_all(deployment)
