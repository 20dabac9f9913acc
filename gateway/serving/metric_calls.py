"""Every finished invocation told to CloudWatch's metric store, through the one Recorder hook.

The invocation core reports each ``Call`` once (``Invocations._run``); this recorder turns it
into ``MetricRecorder.invocation`` (``gateway.cloudwatch``), so ``Invocations``, the 4xx/5xx
and model-error counts, ``ModelLatency`` and ``OverheadLatency`` come from the same place as the
Prometheus series, whichever way the request came in.
"""

from __future__ import annotations

from gateway.calls import Call
from gateway.cloudwatch import MetricRecorder, StatusClass
from gateway.errors import ModelError


class CloudWatchCalls:
    """A ``gateway.calls.Recorder`` that forwards each call to a ``MetricRecorder``."""

    def __init__(self, metrics: MetricRecorder) -> None:
        self.metrics = metrics

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
        answered = bool(call.timings)  # None below when no container answered
        self.metrics.invocation(
            call.endpoint,
            call.variant,
            call.target_model,
            status,
            int(call.model_seconds * 1e6) if answered else None,
            int(call.overhead_seconds * 1e6) if answered else None,
            call.bytes_in,
            call.bytes_out,
            model_status=model_status,
        )
