"""What is kept, for how long, in how much room, and across a restart of the gateway."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from gateway.cloudwatch import MetricService
from gateway.cloudwatch.service import FILENAME
from gateway.cloudwatch.store import MetricTablesTooNew
from tests.gateway.cloudwatch.conftest import EP, KEYS, Clock, World, client_for
from tests.support import PYTHON, free_port, running

SERVE = [PYTHON, "-m", "gateway", "serve"]


def test_datapoints_past_the_retention_are_pruned(world: World) -> None:
    start = world.clock.now
    world.clock.now = start - 23 * 3600
    world.recorder.invocation("ep", "Old", None, "2xx", 100, 10, 1, 1)
    world.clock.now = start
    world.recorder.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    world.service.flush()
    kept = world.service.store.point_count()
    world.clock.now = start + 2 * 3600  # the "Old" variant's datapoints are now 25 hours old
    world.service.flush()
    assert 0 < world.service.store.point_count() < kept
    variants = {
        dict((d["Name"], d["Value"]) for d in m["Dimensions"])["VariantName"]
        for m in world.cw.list_metrics(Namespace="AWS/SageMaker")["Metrics"]
    }
    assert variants == {"AllTraffic"}
    world.clock.now = start + 25 * 3600
    world.service.flush()
    assert world.service.store.point_count() == 0
    assert world.cw.list_metrics()["Metrics"] == []


def test_the_number_of_rows_is_bounded_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    start = clock.now
    service = MetricService(
        tmp_path / FILENAME, retention=86400, flush_interval=10, max_points=1000, clock=clock
    )
    try:
        for minute in range(1200):  # one series, one datapoint a minute for 20 hours
            clock.now = start - (1200 - minute) * 60
            service.recorder.model_setup("ep", "AllTraffic", 1000 + minute)
        clock.now = start
        service.flush()
        assert service.store.point_count() == 1000
        series = service.store.find("AWS/SageMaker", "ModelSetupTime", _dims())
        assert series is not None
        points = service.store.points(series, 0, int(start))
        assert [p.stats.total for p in points[:2]] == [1200.0, 1201.0]  # the oldest 200 went
    finally:
        service.store.close()


def test_stopping_flushes_what_was_recorded_and_a_restart_reads_it(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / FILENAME

    async def record_and_stop() -> None:
        service = MetricService(path, retention=86400, flush_interval=3600, max_points=10**6,
                                clock=clock)  # fmt: skip
        await service.start()
        for _ in range(9):
            service.recorder.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
        await service.aclose()  # the flusher never ran: the stop flushes

    asyncio.run(record_and_stop())
    again = MetricService(path, retention=86400, flush_interval=10, max_points=10**6, clock=clock)
    try:
        series = again.store.find("AWS/SageMaker", "Invocations", _dims())
        assert series is not None
        (point,) = again.store.points(series, 0, int(clock.now) + 60)
        assert point.stats.total == 9.0
        assert again.store.version == 1
    finally:
        again.store.close()
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert {"metric_series", "metric_points", "metric_meta"} <= {t[0] for t in tables}


def test_tandem_serve_keeps_published_metrics_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    now = datetime.now(UTC)
    first = [*_serve(state), "--port", str(port := free_port())]
    with running(first, url=f"http://127.0.0.1:{port}", timeout=60) as gateway:
        cw = client_for(f"http://127.0.0.1:{port}")
        cw.put_metric_data(
            Namespace="Shop/Checkout",
            MetricData=[{"MetricName": "Orders", "Value": v, "Dimensions": EP[:1]}
                        for v in (3.0, 4.0, 5.0)],
        )  # fmt: skip
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=60) == 0
    second = [*_serve(state), "--port", str(port := free_port())]
    with running(second, url=f"http://127.0.0.1:{port}", timeout=60):
        cw = client_for(f"http://127.0.0.1:{port}")
        answer = cw.get_metric_statistics(
            Namespace="Shop/Checkout",
            MetricName="Orders",
            Dimensions=EP[:1],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=10),
            Period=1200,
            Statistics=["Sum", "SampleCount", "Maximum"],
        )
        (point,) = answer["Datapoints"]  # one bucket of 20 minutes holds the whole window
        assert (point["Sum"], point["SampleCount"], point["Maximum"]) == (12.0, 3.0, 5.0)
        # The control plane's POST / still answers beside CloudWatch's.
        sm = boto3.client("sagemaker", endpoint_url=f"http://127.0.0.1:{port}", **KEYS)
        assert sm.list_endpoints()["Endpoints"] == []


def _serve(state: Path) -> list[str]:
    return [*SERVE, "--state-dir", str(state)]


def _dims() -> tuple[tuple[str, str], ...]:
    return (("EndpointName", "ep"), ("VariantName", "AllTraffic"))


def test_tables_from_a_newer_tandem_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    MetricService(path, retention=86400, flush_interval=10, max_points=1000).store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE metric_meta SET value = 99 WHERE key = 'schema'")
    with pytest.raises(MetricTablesTooNew, match="version 99"):
        MetricService(path, retention=86400, flush_interval=10, max_points=1000)


def test_the_flusher_samples_gauges_and_writes_on_its_own(tmp_path: Path) -> None:
    clock = Clock()
    service = MetricService(
        tmp_path / FILENAME, retention=86400, flush_interval=0.01, max_points=1000, clock=clock
    )
    calls: list[int] = []

    def backlog(recorder: Any) -> None:
        calls.append(1)
        recorder.backlog("ep", 4, 2.0, 30.0, False)

    def broken(recorder: Any) -> None:
        raise RuntimeError("a sampler that fails does not stop the others")

    service.sample_with(broken)
    service.sample_with(backlog)

    async def run() -> None:
        await service.start()
        deadline = asyncio.get_running_loop().time() + 30
        while service.store.point_count() == 0:  # written by the background flusher alone
            assert asyncio.get_running_loop().time() < deadline, "the flusher wrote nothing"
            await asyncio.sleep(0.01)
        await service.aclose()

    asyncio.run(run())
    assert calls
    reopened = MetricService(tmp_path / FILENAME, retention=86400, flush_interval=10,
                             max_points=1000, clock=clock)  # fmt: skip
    try:
        series = reopened.store.find(
            "AWS/SageMaker", "ApproximateBacklogSize", (("EndpointName", "ep"),)
        )
        assert series is not None
        (point,) = reopened.store.points(series, 0, int(clock.now) + 60)
        assert point.stats.maximum == 4.0 and point.stats.count == len(calls)
    finally:
        reopened.store.close()
