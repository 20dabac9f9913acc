"""Every finished invocation told to CloudWatch's metric store, through the one Recorder hook.

The invocation core reports each ``Call`` once (``Invocations._run``); this recorder turns it
into ``MetricRecorder.invocation`` (``gateway.cloudwatch``), so ``Invocations``, the 4xx/5xx
and model-error counts, ``ModelLatency`` and ``OverheadLatency`` come from the same place as the
Prometheus series, whichever way the request came in. ``report_instances`` tells it each
variant's instance count when it changes (the reconciler calls it), so ``InvocationsPerInstance``
divides every invocation by the count it ran under; ``InstanceGauges`` samples what is not an
event (CPU, memory, disk, and the counts again) before each flush.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from gateway.calls import Call
from gateway.errors import ModelError
from gateway.live import EndpointTable, Instance, LiveEndpoint

if TYPE_CHECKING:  # the metric store (and botocore) load only where it is kept: tandem serve
    from gateway.cloudwatch import MetricRecorder, StatusClass


class CloudWatchCalls:
    """A ``gateway.calls.Recorder`` that forwards each call to a ``MetricRecorder``."""

    def __init__(self, metrics: MetricRecorder) -> None:
        self.metrics = metrics

    def admitted(self, call: Call) -> None:
        """``ConcurrentRequestsPerModel``: the requests in flight on the instance that took it."""
        instance = call.instance
        if call.live is not None and instance is not None:
            self.metrics.concurrent_requests(call.endpoint, instance.variant, instance.inflight)
            if instance.component is not None:  # ConcurrentRequestsPerCopy
                copies = call.live.components.get(instance.component)
                if copies is not None and copies.instances:
                    total = sum(i.inflight for i in copies.instances)
                    self.metrics.component_concurrent(
                        instance.component, total / len(copies.instances)
                    )

    def finished(self, call: Call) -> None:
        if call.live is None or call.instance is None:
            return  # refused before an instance was chosen: no variant to count it under
        error = call.error
        status: StatusClass
        model_status = None
        if isinstance(error, ModelError):
            status, model_status = "model-error", error.original_status
        else:
            status = "2xx" if error is None else ("5xx" if error.status >= 500 else "4xx")
        model_us = overhead_us = container_us = None  # None when no container answered
        if call.timings:
            model_us = int(call.model_seconds * 1e6)
            overhead_us = int(call.overhead_seconds * 1e6)
            container_us = min(round(call.container_seconds * 1e6), model_us)
        self.metrics.invocation(
            call.endpoint,
            call.variant,
            call.target_model,
            status,
            model_us,
            overhead_us,
            call.bytes_in,
            call.bytes_out,
            model_status=model_status,
            component=call.instance.component,
            container_us=container_us,
        )
        if call.instance.component is not None:
            self.metrics.component_invocation(
                call.instance.component,
                status,
                model_us,
                overhead_us,
                model_status=model_status,
            )


def report_instances(metrics: MetricRecorder | None, live: LiveEndpoint) -> None:
    """Each variant's instance count, now: recorded events are rolled up in order, so the
    invocations after this divide by it, from the first request on (not from the first flush)."""
    if metrics is not None:
        for variant in (*live.variants, *live.shadows):
            metrics.instance_count(live.name, variant.name, len(variant.instances))


class InstanceGauges:
    """A sampler for ``MetricService.sample_with``: before each flush, each instance's CPU,
    memory and disk, and each variant's instance count again (the usage ledger's instance time
    reads it)."""

    def __init__(self, table: EndpointTable, folder: Path) -> None:
        self.table = table
        self.folder = folder
        from gateway.cloudwatch import InstanceSampler

        self.sampler = InstanceSampler()

    def __call__(self, recorder: MetricRecorder) -> None:
        seen: list[Instance] = []
        memory = psutil.virtual_memory().total
        for live in self.table.live():
            for component, copies in live.components.items():
                recorder.copy_count(component, len(copies.instances), live.name, copies.name)
            report_instances(recorder, live)
            for variant in (*live.variants, *live.shadows):
                for instance in variant.instances:
                    seen.append(instance)
                    pids = [c.handle.pid for c in instance.containers if c.handle is not None]
                    alive = [pid for pid in pids if pid is not None]
                    sample = self.sampler.sample(instance, alive, memory, self.folder)
                    if sample is not None:
                        recorder.instance_sample(
                            live.name, variant.name, sample.cpu, sample.memory, sample.disk
                        )
        self.sampler.forget(seen)
