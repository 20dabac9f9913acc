"""The client side of the ``tenants`` example: what the demo runs and the end-to-end test checks.

``run(url)`` sends every customer's model a few requests through boto3's ``sagemaker-runtime``
client, then reads back what the gateway saw: which instance holds which model (its
``/endpoints/tenants`` admin route), its own cache counters (``/metrics``) and the run's
CloudWatch figures (boto3's ``cloudwatch`` client on the gateway's port). Only the client's
libraries are imported here; the models themselves are the build's business (``tenants.py``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pipelines.examples.tenants import ARTIFACTS

ENDPOINT = "tenants"
VARIANT = "AllTraffic"
#: One customer's row: the same for every model, so the answers differ only by customer.
ROW = (5.0, 2.0, 7.0)
#: (metric, statistic, unit shown): the figures the seeds read, in the order the demo prints them.
FIGURES = (
    ("Invocations", "Sum", ""),
    ("InvocationsPerInstance", "Sum", ""),
    ("ModelLatency", "Average", "µs"),
    ("ModelLatency", "p99", "µs"),
    ("OverheadLatency", "Average", "µs"),
    ("ModelLoadingWaitTime", "Average", "µs"),
    ("ModelLoadingTime", "SampleCount", ""),
    ("ModelLoadingTime", "Average", "µs"),
    ("ModelCacheHit", "Sum", ""),
    ("ModelCacheHit", "Average", ""),
    ("LoadedModelCount", "Maximum", ""),
)


@dataclass
class Call:
    """One request: the client's wall time and the gateway's ``Server-Timing`` header (the time
    of each step; ``gateway.cli.invoke.parse_server_timing`` reads it)."""

    target: str
    ms: float
    timing: str | None
    answer: float


@dataclass
class TenantsRun:
    first: Call
    warm: Call
    #: The first call of every other model (each loads it) and every later call (warm).
    cold_rest: list[Call]
    warm_rest: list[Call]
    calls: int
    #: Instance name -> the models it has loaded (from the gateway's admin route).
    holders: dict[str, list[str]]
    #: The gateway's own Prometheus counters for the endpoint: (cache hits, cache misses).
    hits: int
    misses: int
    #: (metric, statistic) -> value, read back through boto3's ``cloudwatch`` client.
    figures: dict[tuple[str, str], float] = field(default_factory=dict)
    answers: dict[str, float] = field(default_factory=dict)


def client(service: str, url: str) -> Any:
    """boto3's own client for ``service``, pointed at the gateway; credentials are dummies."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )


def invoke(runtime: Any, target: str) -> Call:
    started = time.perf_counter()
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT,
        TargetModel=target,
        Body=",".join(map(str, ROW)).encode(),
        ContentType="text/csv",
        Accept="application/json",
    )
    body = json.loads(response["Body"].read())
    ms = (time.perf_counter() - started) * 1000
    timing = response["ResponseMetadata"]["HTTPHeaders"].get("server-timing")
    value = body[0] if isinstance(body, list) else body["predictions"][0]
    return Call(target, ms, timing, float(value))


def holders(url: str) -> dict[str, list[str]]:
    """Each instance of the endpoint's variant and the models it has loaded now."""
    described = httpx.get(f"{url}/endpoints/{ENDPOINT}", timeout=10.0).json()
    (variant,) = described["ProductionVariants"]
    return {
        i["InstanceName"]: sorted(m for models in i["LoadedModels"].values() for m in models)
        for i in variant["InstanceDetails"]
    }


def cache_counters(url: str) -> tuple[int, int]:
    """The gateway's ``tandem_model_cache_{hits,misses}_total`` for the endpoint, summed."""
    totals = {"hits": 0.0, "misses": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=10.0).text.splitlines():
        for kind in totals:
            if line.startswith(f"tandem_model_cache_{kind}_total{{") and (
                f'endpoint="{ENDPOINT}"' in line
            ):
                totals[kind] += float(line.rsplit(" ", 1)[1])
    return int(totals["hits"]), int(totals["misses"])


def cloudwatch_figures(url: str, since: datetime) -> dict[tuple[str, str], float]:
    """The run's figures (one period over the whole run) from the gateway's CloudWatch API; a
    read flushes the metric store first, so every request sent is counted."""
    cloudwatch = client("cloudwatch", url)
    start = since.replace(second=0, microsecond=0)
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    period = int((end - start).total_seconds())
    out: dict[tuple[str, str], float] = {}
    for metric, stat, _ in FIGURES:
        # CloudWatch takes Statistics or ExtendedStatistics in one call, not both.
        key = "ExtendedStatistics" if stat.startswith("p") else "Statistics"
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": VARIANT},
            ],
            StartTime=start,
            EndTime=end,
            Period=period,
            **{key: [stat]},
        )
        (point,) = answer["Datapoints"] or [{}]  # one period covers the run: one datapoint
        value = point.get("ExtendedStatistics", {}).get(stat, point.get(stat))
        if value is not None:
            out[(metric, stat)] = float(value)
    return out


def run(url: str, rounds: int = 3) -> TenantsRun:
    """The first call of one model (it loads), a warm call of it, then ``rounds`` calls of
    every customer's model, one at a time; and what the gateway recorded of it all."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    runtime = client("sagemaker-runtime", url)
    first = invoke(runtime, ARTIFACTS[0])
    warm = invoke(runtime, ARTIFACTS[0])
    sent = [[invoke(runtime, target) for target in ARTIFACTS] for _ in range(rounds)]
    hits, misses = cache_counters(url)
    return TenantsRun(
        first=first,
        warm=warm,
        cold_rest=sent[0][1:],
        warm_rest=[sent[0][0], *(call for later in sent[1:] for call in later)],
        calls=2 + rounds * len(ARTIFACTS),
        holders=holders(url),
        hits=hits,
        misses=misses,
        figures=cloudwatch_figures(url, since),
        answers={call.target: call.answer for call in sent[0]},
    )


def copies_per_model(run: TenantsRun) -> float:
    """Loaded copies over distinct loaded models: 1.0 when each model sits on one instance."""
    loaded = [m for models in run.holders.values() for m in models]
    return len(loaded) / len(set(loaded)) if loaded else math.nan
