"""A load generator for one endpoint, with no dependency beyond the gateway's own (aiohttp).

``users`` concurrent tasks, started ``spawn_rate`` a second, send the same request until
``duration`` has passed, each as soon as its last answer came (closed model, like locust), or, with
``rate``, at fixed times shared by all users (open model, for soak tests). Latencies are kept whole
and sorted at the end: runs are bounded, so exact percentiles cost little. ``/metrics`` is scraped
before and after, so the gateway's own split of each request into ModelLatency (containers) and
OverheadLatency (the gateway) comes out of the same run.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

METRIC_MODEL = "tandem_model_latency_seconds"
METRIC_OVERHEAD = "tandem_overhead_latency_seconds"
#: Status recorded for a request that got no HTTP answer (refused, reset, timed out).
NO_ANSWER = 0


@dataclass(frozen=True)
class LoadSpec:
    url: str
    endpoint: str
    users: int = 10
    spawn_rate: float = 10.0
    duration: float = 10.0
    body: bytes = b""
    content_type: str | None = None
    accept: str | None = None
    target_container: str | None = None
    target_model: str | None = None
    #: Requests a second over all users (open model); None: each user sends back to back.
    rate: float | None = None
    timeout: float = 30.0
    #: Extra headers on every request and on the /metrics scrapes (e.g. an API key).
    headers: tuple[tuple[str, str], ...] = ()

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        for name, value in (
            ("Content-Type", self.content_type),
            ("Accept", self.accept),
            ("X-Amzn-SageMaker-Target-Container-Hostname", self.target_container),
            ("X-Amzn-SageMaker-Target-Model", self.target_model),
        ):
            if value is not None:
                headers[name] = value
        return headers


@dataclass(frozen=True)
class Sample:
    #: Seconds from the start of the run to when the request was sent.
    at: float
    latency: float
    #: HTTP status, or ``NO_ANSWER``.
    status: int
    #: ``x-amzn-ErrorType`` of an error answer, or the exception's class without an answer.
    error: str | None = None
    #: The production variant that answered (``x-Amzn-Invoked-Production-Variant``), if any.
    variant: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class LoadResult:
    spec: LoadSpec
    elapsed: float
    samples: list[Sample]
    #: Average seconds per request from the gateway's histograms over the run, when scraped.
    model_latency: float | None = None
    overhead_latency: float | None = None
    metrics_before: MetricsSnapshot | None = None
    metrics_after: MetricsSnapshot | None = None
    #: (seconds from the start, instances serving by variant), when they were polled.
    instances: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    _sorted: list[float] = field(default_factory=list, repr=False)

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def failures(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def errors(self) -> Counter[str]:
        """Failed requests by ``"<status> <code>"`` (``"0 <exception>"`` without an answer)."""
        return Counter(f"{s.status} {s.error or ''}".strip() for s in self.samples if not s.ok)

    def percentile(self, q: float) -> float:
        """Latency (seconds) below which ``q`` percent of all requests finished."""
        if not self._sorted:
            self._sorted = sorted(s.latency for s in self.samples)
        return percentile(self._sorted, q)

    def windows(self, seconds: float) -> list[dict[str, float]]:
        """Per-window figures (requests, failures, p50, p99) to see drift over a long run."""
        buckets: dict[int, list[Sample]] = {}
        for sample in self.samples:
            buckets.setdefault(int(sample.at // seconds), []).append(sample)
        rows = []
        for index in sorted(buckets):
            latencies = sorted(s.latency for s in buckets[index])
            rows.append(
                {
                    "start": index * seconds,
                    "requests": len(latencies),
                    "failures": sum(not s.ok for s in buckets[index]),
                    "p50": percentile(latencies, 50),
                    "p99": percentile(latencies, 99),
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (latencies in milliseconds)."""
        ms = 1000.0
        return {
            "endpoint": self.spec.endpoint,
            "users": self.spec.users,
            "rate": self.spec.rate,
            "duration_s": round(self.elapsed, 3),
            "requests": self.requests,
            "failures": self.failures,
            "rps": round(self.rps, 2),
            "p50_ms": round(self.percentile(50) * ms, 3),
            "p90_ms": round(self.percentile(90) * ms, 3),
            "p99_ms": round(self.percentile(99) * ms, 3),
            "max_ms": round(self.percentile(100) * ms, 3),
            "model_latency_ms": _ms(self.model_latency),
            "overhead_latency_ms": _ms(self.overhead_latency),
            "errors": dict(self.errors()),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(math.ceil(q / 100.0 * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


class MetricsSnapshot:
    """One scrape of the gateway's ``/metrics``, summed by sample name over matching labels."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.samples: list[tuple[str, dict[str, str], float]] = [
            (s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str, **labels: str) -> dict[str, float]:
        """``name``'s values keyed by one label (e.g. restarts by container)."""
        found: dict[str, float] = {}
        for sample, have, value in self.samples:
            if sample == name and all(have.get(k) == v for k, v in labels.items()):
                found[have.get(label, "")] = found.get(have.get(label, ""), 0.0) + value
        return found


def average_between(
    before: MetricsSnapshot, after: MetricsSnapshot, histogram: str, **labels: str
) -> float | None:
    """Average of ``histogram`` over the observations made between two scrapes."""
    count = after.value(f"{histogram}_count", **labels) - before.value(
        f"{histogram}_count", **labels
    )
    total = after.value(f"{histogram}_sum", **labels) - before.value(f"{histogram}_sum", **labels)
    return total / count if count > 0 else None


async def scrape(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None
) -> MetricsSnapshot | None:
    """The gateway's metrics, or None when it does not serve them (or refuses us)."""
    try:
        async with session.get(f"{url.rstrip('/')}/metrics", headers=headers) as response:
            if response.status != 200:
                return None
            return MetricsSnapshot(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def instance_counts(session: aiohttp.ClientSession, spec: LoadSpec) -> dict[str, int] | None:
    """Instances serving now by production variant (``CurrentInstanceCount`` of the gateway's
    ``GET /endpoints/{name}``), or None when it does not answer."""
    url = f"{spec.url.rstrip('/')}/endpoints/{spec.endpoint}"
    try:
        async with session.get(url, headers=dict(spec.headers)) as response:
            if response.status != 200:
                return None
            found = await response.json()
        return {
            v["VariantName"]: int(v["CurrentInstanceCount"]) for v in found["ProductionVariants"]
        }
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
        return None


#: What a watcher of a run is told about once a tick: seconds since the start, the samples so
#: far (appended to as answers come) and the instances just polled (None: not readable).
Watch = Callable[[float, list[Sample], dict[str, int] | None], None]


async def run_load(spec: LoadSpec, watch: Watch | None = None, tick: float = 1.0) -> LoadResult:
    """Drive ``spec``'s endpoint and collect every request's latency and outcome; with
    ``watch``, also poll the instances serving every ``tick`` seconds (kept in the result)
    and tell ``watch``."""
    if spec.users < 1:
        raise ValueError("users must be at least 1")
    target = f"{spec.url.rstrip('/')}/endpoints/{spec.endpoint}/invocations"
    headers = spec.request_headers()
    extra = dict(spec.headers)
    connector = aiohttp.TCPConnector(limit=spec.users + 2)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        before = await scrape(session, spec.url, extra)
        samples: list[Sample] = []
        start = time.perf_counter()
        deadline = start + spec.duration
        slots = itertools.count()

        async def send() -> None:
            sent = time.perf_counter()
            status, error, variant = NO_ANSWER, None, None
            try:
                async with session.post(target, data=spec.body, headers=headers) as response:
                    await response.read()
                    status = response.status
                    if status >= 300:
                        error = response.headers.get("x-amzn-ErrorType", "").split(":")[0]
                    variant = response.headers.get("x-Amzn-Invoked-Production-Variant")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            done = time.perf_counter()
            samples.append(Sample(sent - start, done - sent, status, error, variant))

        async def user(index: int) -> None:
            if spec.spawn_rate > 0:
                await asyncio.sleep(index / spec.spawn_rate)
            while True:
                if spec.rate is not None:
                    at = start + next(slots) / spec.rate
                    if at >= deadline:
                        return
                    await asyncio.sleep(max(at - time.perf_counter(), 0.0))
                elif time.perf_counter() >= deadline:
                    return
                await send()

        polled: list[tuple[float, dict[str, int]]] = []

        async def watcher() -> None:
            assert watch is not None
            while True:
                counts = await instance_counts(session, spec)
                now = time.perf_counter() - start
                if counts is not None:
                    polled.append((now, counts))
                watch(now, samples, counts)
                await asyncio.sleep(tick)

        watching = asyncio.ensure_future(watcher()) if watch is not None else None
        await asyncio.gather(*(user(i) for i in range(spec.users)))
        elapsed = time.perf_counter() - start
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            assert watch is not None
            last = await instance_counts(session, spec)
            if last is not None:
                polled.append((elapsed, last))
            watch(elapsed, samples, last)
        after = await scrape(session, spec.url, extra)
    result = LoadResult(spec, elapsed, samples, metrics_before=before, metrics_after=after)
    result.instances = polled
    if before is not None and after is not None:
        labels = {"endpoint": spec.endpoint}
        result.model_latency = average_between(before, after, METRIC_MODEL, **labels)
        result.overhead_latency = average_between(before, after, METRIC_OVERHEAD, **labels)
    return result


def render(result: LoadResult) -> Any:
    """A rich renderable: the run's table (requests, req/s, percentiles, latency split, errors)."""
    from rich.console import Group
    from rich.table import Table

    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:.2f}"

    spec = result.spec
    mode = f"{spec.rate:g} req/s" if spec.rate is not None else "closed loop"
    table = Table(
        title=f"tandem loadtest: {spec.endpoint}, {spec.users} users, {mode}, "
        f"{result.elapsed:.1f} s",
        title_justify="left",
    )
    for column in ("requests", "failures", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    table.add_column("ModelLatency ms", justify="right")
    table.add_column("OverheadLatency ms", justify="right")
    table.add_row(
        str(result.requests),
        str(result.failures),
        f"{result.rps:.1f}",
        ms(result.percentile(50)),
        ms(result.percentile(90)),
        ms(result.percentile(99)),
        ms(result.percentile(100)),
        ms(result.model_latency),
        ms(result.overhead_latency),
    )
    parts: list[Any] = [table]
    errors = result.errors()
    if errors:
        breakdown = Table(title="errors", title_justify="left")
        breakdown.add_column("status / error")
        breakdown.add_column("count", justify="right")
        for what, count in errors.most_common():
            breakdown.add_row(what, str(count))
        parts.append(breakdown)
    if result.model_latency is None:
        parts.append("(ModelLatency/OverheadLatency: /metrics not readable or no request counted)")
    return Group(*parts)
