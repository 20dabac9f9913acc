"""Gateway settings: one typed object, read once at start from ``TANDEM_*`` env and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.credentials import Credentials, parse_credentials

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: The default host budget: containers per CPU, and memory each container is counted to need.
CONTAINERS_PER_CPU = 8
MEMORY_PER_CONTAINER = 256 * 1024**2


def host_resources() -> tuple[int, int]:
    """This machine's CPUs (those the process may use) and memory in bytes (0: unknown)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    return cpus or 1, memory


def default_container_budget() -> int:
    """Containers this machine can run: 8 per CPU, at most one per 256 MiB of memory, at
    least 4. An idle framework container holds about 100-250 MiB and little CPU; many busy
    ones share the CPUs, so past this they would only slow each other down."""
    cpus, memory = host_resources()
    by_cpu = CONTAINERS_PER_CPU * (cpus or 1)
    by_memory = memory // MEMORY_PER_CONTAINER if memory > 0 else by_cpu
    return max(4, min(by_cpu, by_memory))


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: Where per-container model dirs and logs live.
    state_dir: Path = Path(".tandem")
    #: Backend that runs containers: ``process`` (embedded default), ``docker``, or ``external``
    #: (they already run, e.g. under compose, at ``external_url``).
    backend: Literal["process", "docker", "external"] = "process"
    #: Where the external backend finds each container: ``{endpoint}`` and ``{hostname}`` filled in.
    external_url: str = "http://{endpoint}-{hostname}:8080"
    #: Upstream HTTP client, chosen by measurement (see benchmarks/gateway.py).
    upstream: Literal["httptools", "aiohttp", "httpx"] = "httptools"
    #: Seconds a container may take to answer its first ``/ping``.
    start_timeout: float = Field(default=120.0, gt=0)
    #: Seconds between SIGTERM and SIGKILL when stopping a container.
    stop_grace: float = Field(default=10.0, ge=0)
    #: Restart backoff: first delay, cap (seconds).
    restart_backoff: float = Field(default=0.5, gt=0)
    restart_backoff_max: float = Field(default=30.0, gt=0)
    #: A container healthy this long has its restart backoff reset to ``restart_backoff``.
    restart_reset_after: float = Field(default=60.0, gt=0)
    #: Seconds between health checks of running containers.
    health_interval: float = Field(default=2.0, gt=0)
    #: Seconds one ``/ping`` may take (the contract asks for 2).
    ping_timeout: float = Field(default=2.0, gt=0)
    #: Consecutive failed health checks after which a running container is restarted.
    health_failures: int = Field(default=3, ge=1)
    #: Largest total size an unpacked ``model_data`` archive may have (guards against tar bombs).
    max_model_bytes: int = Field(default=32 * 1024**3, gt=0)
    #: Lines of each container's output kept in memory for start-failure messages.
    log_tail_lines: int = Field(default=40, ge=1)
    #: Largest request body and largest payload between two steps, in bytes.
    max_payload: int = Field(default=MAX_PAYLOAD_BYTES, gt=0)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    #: InvokeEndpointAsync (gateway/asynchronous/): largest input a queued request may name.
    async_max_bytes: int = Field(default=1024**3, gt=0)
    #: S3-compatible store for ``s3://`` model_data (MinIO, Ceph ...); AWS's own env names work too.
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "s3_endpoint_url", "TANDEM_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"
        ),
    )
    #: Seconds one multi-model load (``POST /models`` to the container) may take.
    model_load_timeout: float = Field(default=600.0, gt=0)
    #: Which loaded models leave memory first (gateway/multimodel/eviction.py): ``value``
    #: (frequency with aging, size, load time; scan-resistant) or ``lru``.
    eviction_policy: Literal["value", "lru"] = "value"
    #: Loads one MultiModel container (per instance) runs at once; unset: the CPUs this
    #: process may use.
    model_loads: int | None = Field(default=None, ge=1)
    #: Slow or oversized clients (gateway/edge/guard.py): largest header block in bytes, seconds
    #: to receive the headers and the body, seconds an idle keep-alive connection stays open.
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=60.0, gt=0)
    keep_alive_timeout: int = Field(default=5, ge=1)
    #: Authentication (gateway/edge/auth.py): ``api_keys`` and ``sigv4_credentials``
    #: (``access:secret``) are comma lists or ``@file`` (one a line); ``metrics_open`` leaves
    #: ``/metrics`` unguarded.
    auth: Literal["none", "api-key", "sigv4"] = "none"
    api_keys: SecretStr | None = None
    sigv4_credentials: SecretStr | None = None
    metrics_open: bool = False
    #: The control plane (gateway/control/): where model data may come from, a comma list of
    #: folders and URL prefixes (``s3://`` for any S3); unset: the state folder, the current
    #: folder and any ``s3://``. ARNs name ``region`` and ``account``.
    model_roots: str | None = None
    #: InvokeEndpointAsync: where a caller of role ``invoke`` may name its InputLocation (a
    #: comma list of folders and URL prefixes, like ``model_roots``); unset: nowhere.
    input_roots: str | None = None
    region: str = "us-east-1"
    #: The metric store behind CloudWatch's API (gateway/cloudwatch/): hours datapoints are
    #: kept, seconds between two flushes of the recorded events to the state database, and the
    #: most datapoint rows kept (past it the oldest go first, whatever their age).
    metric_retention_hours: float = Field(default=24.0, ge=1)
    metric_flush_interval: float = Field(default=10.0, gt=0)
    metric_max_points: int = Field(default=1_000_000, ge=1000)
    #: Application Auto Scaling (gateway/autoscaling/): seconds between two evaluations, and
    #: the seconds that count as one of AWS's minutes (datapoint periods and cooldowns shrink
    #: with it: 1 in tests, for reactions 60 times as fast).
    autoscaling_interval: float = Field(default=10.0, gt=0)
    autoscaling_minute: int = 60
    #: Scale to zero (gateway/serving/held.py): requests held per variant at zero instances
    #: while one starts, at most, and the seconds each waits before ThrottlingException.
    held_requests: int = Field(default=100, ge=0)
    held_wait: float = Field(default=30.0, ge=0)
    #: The account in every ARN and message (twelve digits, as AWS's).
    account: str = Field(default="000000000000", pattern=r"^\d{12}$")
    #: The host budget: containers (instances x containers, over every endpoint) this machine
    #: may run at once; unset: derived from its CPUs and memory (``default_container_budget``).
    max_containers: int | None = Field(default=None, ge=1)
    #: Inference components (docs/inference-components.md): what one instance of an endpoint
    #: for components offers its copies' reservations, CPU cores and memory in MiB; unset:
    #: this machine's CPUs and memory (every instance of such an endpoint shares the host).
    instance_cpus: float | None = Field(default=None, gt=0)
    instance_memory_mb: int | None = Field(default=None, ge=128)
    #: The usage ledger (gateway/usage/, docs/usage.md): days its hourly rows are kept, prices
    #: per instance-hour (``type=price,...``, ``*`` for any type; unset: no costs, shares only),
    #: and the per-model Prometheus series: the top K models by invocations over a window of
    #: this many seconds (the rest summed under ``model="other"``).
    usage_retention_days: float = Field(default=90.0, ge=1)
    usage_prices: str | None = Field(
        default=None,
        pattern=r"^\s*[^=,\s]+\s*=\s*\d+(\.\d*)?\s*(,\s*[^=,\s]+\s*=\s*\d+(\.\d*)?\s*)*$",
    )
    usage_top_models: int = Field(default=50, ge=0, le=1000)
    usage_top_window: float = Field(default=300.0, gt=0)

    _credentials: Credentials = PrivateAttr(default_factory=Credentials)

    @model_validator(mode="after")
    def _auth_configured(self) -> GatewaySettings:
        # Parsed once, here: a missing key file fails at start, not at the first request.
        self._credentials = parse_credentials(self.auth, self.api_keys, self.sigv4_credentials)
        return self

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    @property
    def container_budget(self) -> int:
        """``max_containers``, else what this machine can run (``default_container_budget``)."""
        return self.max_containers or default_container_budget()

    @property
    def instance_capacity(self) -> tuple[float, int]:
        """(CPU cores, memory MiB) of one instance for inference components."""
        cpus, memory = host_resources()
        return (self.instance_cpus or float(cpus), self.instance_memory_mb or memory // 1024**2)

    @field_validator("autoscaling_minute")
    @classmethod
    def _a_period(cls, value: int) -> int:
        if value not in (1, 5, 10, 30, 60):
            raise ValueError("must be 1, 5, 10, 30 or 60 (a period the metric store keeps)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
