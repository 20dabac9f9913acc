"""``DataPlane``: the data plane of one gateway, built before any edge and handed to each.

It holds what every way in shares: the endpoint table, the ``Dispatcher`` (one pooled client
and, for MultiModel containers, one model manager per container), the metrics, the shadow copies,
the invocation core (``Invocations``) and the requests it holds for a variant at zero (``Held``).
``tandem serve`` (``gateway/serve.py``) builds one and passes it to the HTTP app, the reconciler
and the asynchronous workers; a batch job's embedded gateway and the tests build one over their
own endpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from gateway.calls import Recorder, Recorders
from gateway.capture import CaptureCollector, CaptureWriter
from gateway.live import ContainerRuntime, EndpointTable, Instance, LiveEndpoint
from gateway.logstreams import COMPONENT_GROUP, ENDPOINT_GROUP, endpoint_stream, stream_arn
from gateway.metrics import GatewayMetrics
from gateway.multimodel.hosting import close_all, make_managers, preload_all
from gateway.serving.dispatch import Dispatcher
from gateway.serving.held import Held, component_of, variant_of
from gateway.serving.invocation import Invocations
from gateway.serving.metric_calls import CloudWatchCalls
from gateway.serving.shadows import ShadowSender
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.cloudwatch import MetricRecorder


class ContainerLogs:
    """``ModelError.LogStreamArn``: the CloudWatch Logs stream of a container's output, as
    ``gateway.logs`` serves it (the names are ``gateway.logstreams``')."""

    def __init__(self, table: EndpointTable, settings: GatewaySettings) -> None:
        self.table = table
        self.region, self.account = settings.region, settings.account

    def __call__(self, container: ContainerRuntime) -> str:
        live = self.table.get(container.endpoint)
        instance = (
            next((r for r in live.runtimes if container in r.containers), None) if live else None
        )
        component = instance.component if instance is not None else None
        stream = endpoint_stream(
            component or (instance.variant if instance is not None else "AllTraffic"),
            container.deployment,
            container.hostname,
            len(instance.containers) if instance is not None else 1,
        )
        group = COMPONENT_GROUP + component if component else ENDPOINT_GROUP + container.endpoint
        return stream_arn(self.region, self.account, group, stream)


def _no_capacity(cloudwatch: MetricRecorder, key: str, request: bool) -> None:
    """SageMaker's ``NoCapacityInvocationFailures``: a request found its variant at zero."""
    found = variant_of(key)
    if found is not None and request:
        cloudwatch.no_capacity(*found)
    component = component_of(key)
    if component is not None and request:
        cloudwatch.component_no_capacity(component)


class DataPlane:
    """Every part of the data plane, made once; ``open``/``aclose`` inside the event loop."""

    def __init__(
        self,
        endpoints: Iterable[Instance | LiveEndpoint] | EndpointTable,
        settings: GatewaySettings,
        *,
        recorders: Sequence[Recorder] = (),
        cloudwatch: MetricRecorder | None = None,
    ) -> None:
        """``recorders``: what else sees every finished invocation, after the Prometheus series
        (a usage ledger); ``cloudwatch``: CloudWatch's metric store, told of every invocation
        (a recorder of its own) and of the model managers' loads."""
        table = endpoints if isinstance(endpoints, EndpointTable) else EndpointTable(endpoints)
        self.table = table
        self.settings = settings
        self.dispatcher = Dispatcher(
            upstream=settings.upstream,
            max_payload=settings.max_payload,
            log_stream=ContainerLogs(table, settings),
        )
        self.metrics = GatewayMetrics(table, self.dispatcher.manager)
        self.metrics.cloudwatch = cloudwatch
        if cloudwatch is not None:
            recorders = [*recorders, CloudWatchCalls(cloudwatch)]
        self.metrics.registry.register(CaptureCollector(self.capture_writers))
        managers = make_managers(table, settings, self.dispatcher.upstream, self.metrics)
        self.dispatcher.host_models(managers)
        self.shadows = ShadowSender(self.metrics)
        #: Every finished invocation is reported here, once (``Invocations._run``); the
        #: Prometheus series alone are called straight, without the fan-out.
        self.recorder: Recorder = (
            Recorders([self.metrics, *recorders]) if recorders else self.metrics
        )
        #: Requests to a variant at zero instances wait here while one starts.
        self.held = Held(settings.held_requests, settings.held_wait)
        if cloudwatch is not None:
            self.held.listeners.append(functools.partial(_no_capacity, cloudwatch))
        self.invocations = Invocations(
            table, self.dispatcher, self.recorder, self.shadows, settings.account, self.held
        )

    def capture_writers(self) -> list[CaptureWriter]:
        """The data capture writers of the endpoints serving now (for their gauges)."""
        return [e.capture for e in self.table.live() if e.capture is not None]

    async def open(self) -> None:
        """Clients for the containers already up; pinned models in memory before a request."""
        self.dispatcher.open(self.table)
        await preload_all(self.dispatcher.managers)

    async def aclose(self) -> None:
        await self.shadows.aclose()
        await close_all(self.dispatcher.managers)
        await self.dispatcher.aclose()
