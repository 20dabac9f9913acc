"""SageMaker's CloudWatch metrics as Tandem publishes them, and the recording interface.

Names, units, namespaces and dimensions are SageMaker's (docs/metrics.md lists them with their
Prometheus twins). ``MetricRecorder`` is what the invocation core, the model managers, the async
worker and the reconciler call: one method per kind of event, each a cheap append.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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
CPU = Metric(ENDPOINTS, "CPUUtilization", "Percent")
MEMORY = Metric(ENDPOINTS, "MemoryUtilization", "Percent")
DISK = Metric(ENDPOINTS, "DiskUtilization", "Percent")
REQUEST_BYTES = Metric(TANDEM, "RequestBytes", "Bytes")
RESPONSE_BYTES = Metric(TANDEM, "ResponseBytes", "Bytes")

#: Every metric Tandem publishes itself, in docs/metrics.md's order.
CATALOGUE = (
    INVOCATIONS, PER_INSTANCE, ERRORS_4XX, ERRORS_5XX, MODEL_ERRORS, MODEL_LATENCY,
    OVERHEAD_LATENCY, CONCURRENT, SETUP_TIME, LOADING_WAIT, DOWNLOADING, LOADING, UNLOADING,
    CACHE_HIT, LOADED_COUNT, BACKLOG, BACKLOG_PER_INSTANCE, OLDEST_AGE, WITHOUT_CAPACITY, CPU,
    MEMORY, DISK, REQUEST_BYTES, RESPONSE_BYTES,
)  # fmt: skip

#: Per-model series (dimension ``TargetModel`` beside EndpointName and VariantName), which
#: SageMaker does not break down: a MultiModel endpoint's figures for one of its models.
PER_MODEL = frozenset(
    m.name
    for m in (INVOCATIONS, MODEL_LATENCY, CACHE_HIT, LOADING_WAIT, DOWNLOADING, LOADING, UNLOADING)
)


class MetricRecorder(Protocol):
    """What the serving side reports; every method returns at once (no I/O, no lock).

    Latencies are integers in microseconds, as CloudWatch's SageMaker metrics are.
    """

    def invocation(
        self,
        endpoint: str,
        variant: str,
        target_model: str | None,
        status: StatusClass,
        model_us: int | None,
        overhead_us: int | None,
        bytes_in: int,
        bytes_out: int,
        *,
        model_status: int | None = None,
    ) -> None:
        """A finished request (``model_us``/``overhead_us`` None when no container answered;
        ``model_status`` the container's status for a ``model-error``)."""

    def concurrent_requests(self, endpoint: str, variant: str, in_flight: int) -> None:
        """The requests in flight on the variant's instance that just took one (10 s data)."""

    def model_cache(
        self, endpoint: str, variant: str, target_model: str, hit: bool, wait_us: int | None
    ) -> None:
        """A MultiModel request found its model loaded (hit) or waited ``wait_us`` for it."""

    def model_loaded(
        self,
        endpoint: str,
        variant: str,
        target_model: str,
        download_us: int | None,
        load_us: int,
        loaded_count: int,
        *,
        size_bytes: int | None = None,
    ) -> None:
        """A model was loaded (``download_us`` None when it came from the disk cache;
        ``size_bytes`` the resident memory it added, as the model manager measured it)."""

    def model_unloaded(
        self, endpoint: str, variant: str, target_model: str, unload_us: int, loaded_count: int
    ) -> None:
        """A model was unloaded from a container's memory."""

    def model_setup(self, endpoint: str, variant: str, setup_us: int) -> None:
        """An instance took ``setup_us`` from start to its first healthy ``/ping``."""

    def instance_count(self, endpoint: str, variant: str, count: int) -> None:
        """The variant now runs ``count`` instances (``InvocationsPerInstance`` divides by it)."""

    def instance_sample(
        self, endpoint: str, variant: str, cpu: float, memory: float, disk: float
    ) -> None:
        """One sample of an instance's CPU (100 per busy core), memory and disk use, percent."""

    def backlog(
        self, endpoint: str, size: int, per_instance: float, oldest_s: float, without_capacity: bool
    ) -> None:
        """An async endpoint's queue, sampled."""
