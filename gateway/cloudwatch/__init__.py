"""CloudWatch's metrics for the gateway: SageMaker's figures rolled up, kept and read back.

The serving side records events through ``MetricRecorder`` (``Recorder`` in ``recorder.py``,
which appends each to a deque, nothing more; ``InstanceSampler`` in ``sampler.py``
measures instances for it); ``MetricService`` (``service.py``) flushes them every
``TANDEM_METRIC_FLUSH_INTERVAL`` seconds into datapoints (``rollup.py``) in the state database
(``store.py``: count, sum, min, max and a histogram per bucket, ``sketch.py``); and
CloudWatch's own API reads them (``api.py``, with metric math in ``mathexpr.py``), spoken in the
three protocols botocore's model lists (``route.py``, ``wire.py``, ``cbor.py``). See
docs/metrics.md. Imports nothing of the serving path: it is handed events, it never reaches in.
"""

from gateway.cloudwatch.api import MetricApi
from gateway.cloudwatch.names import StatusClass
from gateway.cloudwatch.recorder import Recorder
from gateway.cloudwatch.route import cloudwatch_routes
from gateway.cloudwatch.sampler import InstanceSampler
from gateway.cloudwatch.service import MetricService

#: What the serving side reports into: the one implementation is the interface (it imports
#: nothing, so a type needs no Protocol restating its signatures).
MetricRecorder = Recorder

__all__ = [
    "InstanceSampler",
    "MetricApi",
    "MetricRecorder",
    "MetricService",
    "Recorder",
    "StatusClass",
    "cloudwatch_routes",
]
