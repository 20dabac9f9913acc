"""SageMaker's CloudWatch metrics as Tandem publishes them.

Names, units, namespaces and dimensions are SageMaker's (docs/metrics.md lists them with their
Prometheus twins). What the invocation core, the model managers, the async worker and the
reconciler call is ``MetricRecorder``, ``Recorder`` in ``recorder.py``: one method per kind of
event, each a cheap append.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SAGEMAKER = "AWS/SageMaker"
ENDPOINTS = "/aws/sagemaker/Endpoints"
#: Tandem's own figures, which SageMaker does not publish (request and answer sizes).
TANDEM = "Tandem/Endpoints"

#: The class of an answer as CloudWatch counts it (a model error also counts as 4xx or 5xx by
#: the container's own status, as SageMaker's ``Invocation4XXErrors`` does).
StatusClass = Literal["2xx", "4xx", "5xx", "model-error"]


@dataclass(frozen=True, slots=True)
class Metric:
    namespace: str
    name: str
    unit: str
    #: Seconds per stored datapoint: 60, or 10 for the high-resolution ones.
    resolution: int = 60


INVOCATIONS = Metric(SAGEMAKER, "Invocations", "None")
PER_INSTANCE = Metric(SAGEMAKER, "InvocationsPerInstance", "None")
ERRORS_4XX = Metric(SAGEMAKER, "Invocation4XXErrors", "None")
ERRORS_5XX = Metric(SAGEMAKER, "Invocation5XXErrors", "None")
MODEL_ERRORS = Metric(SAGEMAKER, "InvocationModelErrors", "None")
MODEL_LATENCY = Metric(SAGEMAKER, "ModelLatency", "Microseconds")
OVERHEAD_LATENCY = Metric(SAGEMAKER, "OverheadLatency", "Microseconds")
CONCURRENT = Metric(SAGEMAKER, "ConcurrentRequestsPerModel", "None", resolution=10)
SETUP_TIME = Metric(SAGEMAKER, "ModelSetupTime", "Microseconds")
LOADING_WAIT = Metric(SAGEMAKER, "ModelLoadingWaitTime", "Microseconds")
DOWNLOADING = Metric(SAGEMAKER, "ModelDownloadingTime", "Microseconds")
LOADING = Metric(SAGEMAKER, "ModelLoadingTime", "Microseconds")
UNLOADING = Metric(SAGEMAKER, "ModelUnloadingTime", "Microseconds")
CACHE_HIT = Metric(SAGEMAKER, "ModelCacheHit", "None")
LOADED_COUNT = Metric(SAGEMAKER, "LoadedModelCount", "None")
BACKLOG = Metric(SAGEMAKER, "ApproximateBacklogSize", "None")
BACKLOG_PER_INSTANCE = Metric(SAGEMAKER, "ApproximateBacklogSizePerInstance", "None")
OLDEST_AGE = Metric(SAGEMAKER, "ApproximateAgeOfOldestRequest", "Seconds")
WITHOUT_CAPACITY = Metric(SAGEMAKER, "HasBacklogWithoutCapacity", "None")
#: A real-time request that found its variant at zero instances (held, gateway/serving/held.py).
NO_CAPACITY = Metric(SAGEMAKER, "NoCapacityInvocationFailures", "None", resolution=10)
#: Inference components' own (dimension InferenceComponentName; their Invocations, errors and
#: latencies are the endpoint metrics' names under that dimension).
PER_COPY = Metric(SAGEMAKER, "InvocationsPerCopy", "None")
CONCURRENT_PER_COPY = Metric(SAGEMAKER, "ConcurrentRequestsPerCopy", "None", resolution=10)
CPU = Metric(ENDPOINTS, "CPUUtilization", "Percent")
MEMORY = Metric(ENDPOINTS, "MemoryUtilization", "Percent")
DISK = Metric(ENDPOINTS, "DiskUtilization", "Percent")
REQUEST_BYTES = Metric(TANDEM, "RequestBytes", "Bytes")
RESPONSE_BYTES = Metric(TANDEM, "ResponseBytes", "Bytes")

#: Every metric Tandem publishes itself, in docs/metrics.md's order.
CATALOGUE = (
    INVOCATIONS, PER_INSTANCE, ERRORS_4XX, ERRORS_5XX, MODEL_ERRORS, MODEL_LATENCY,
    OVERHEAD_LATENCY, CONCURRENT, SETUP_TIME, LOADING_WAIT, DOWNLOADING, LOADING, UNLOADING,
    CACHE_HIT, LOADED_COUNT, BACKLOG, BACKLOG_PER_INSTANCE, OLDEST_AGE, WITHOUT_CAPACITY,
    NO_CAPACITY, PER_COPY, CONCURRENT_PER_COPY, CPU, MEMORY, DISK, REQUEST_BYTES, RESPONSE_BYTES,
)  # fmt: skip

#: Per-model series (dimension ``TargetModel`` beside EndpointName and VariantName), which
#: SageMaker does not break down: a MultiModel endpoint's figures for one of its models.
PER_MODEL = frozenset(
    m.name
    for m in (INVOCATIONS, MODEL_LATENCY, CACHE_HIT, LOADING_WAIT, DOWNLOADING, LOADING, UNLOADING)
)
