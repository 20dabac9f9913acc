"""What the recorder is told comes back through boto3 as SageMaker's metrics, rolled up right."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.cloudwatch.sketch import ACCURACY
from tests.gateway.cloudwatch.conftest import EP, World


def test_sum_of_invocations_equals_what_was_recorded_over_several_minutes(world: World) -> None:
    sent = {0: 7, 60: 12, 180: 5}  # seconds from now -> requests in that minute
    start = world.clock.now
    for offset, count in sent.items():
        world.clock.now = start + offset
        for _ in range(count):
            world.recorder.invocation("ep", "AllTraffic", None, "2xx", 900, 40, 100, 200)
        world.service.flush()  # a flush per minute, as the flusher would
    world.clock.now = start
    points = world.stats("Invocations", "Sum", "SampleCount")
    assert [p["Sum"] for p in points] == [7.0, 12.0, 5.0]
    assert [p["SampleCount"] for p in points] == [7.0, 12.0, 5.0]
    gaps = [
        (b["Timestamp"] - a["Timestamp"]).total_seconds() for a, b in itertools.pairwise(points)
    ]
    assert gaps == [60.0, 120.0]
    hourly = world.stats("Invocations", "Sum", period=3600)
    assert sum(p["Sum"] for p in hourly) == 24.0


def test_errors_are_classed_as_cloudwatch_counts_them(world: World) -> None:
    rec = world.recorder
    rec.invocation("ep", "AllTraffic", None, "2xx", 1000, 50, 1, 1)
    rec.invocation("ep", "AllTraffic", None, "4xx", None, 30, 1, 0)
    rec.invocation("ep", "AllTraffic", None, "5xx", None, 30, 1, 0)
    rec.invocation("ep", "AllTraffic", None, "model-error", 500, 20, 1, 0, model_status=415)
    rec.invocation("ep", "AllTraffic", None, "model-error", None, 20, 1, 0)  # a timeout
    (invocations,) = world.stats("Invocations", "Sum")
    (four,) = world.stats("Invocation4XXErrors", "Sum", "Average")
    (five,) = world.stats("Invocation5XXErrors", "Sum")
    (model,) = world.stats("InvocationModelErrors", "Sum")
    assert invocations["Sum"] == 5.0
    assert (four["Sum"], four["Average"]) == (2.0, 0.4)  # Average is the error rate
    assert five["Sum"] == 2.0
    assert model["Sum"] == 2.0
    (latency,) = world.stats("ModelLatency", "SampleCount", "Minimum", "Maximum")
    assert (latency["SampleCount"], latency["Minimum"], latency["Maximum"]) == (2, 500, 1000)
    assert latency["Unit"] == "Microseconds"


def test_invocations_per_instance_divides_by_the_instances_at_the_time(world: World) -> None:
    rec = world.recorder
    rec.instance_count("ep", "AllTraffic", 4)
    for _ in range(8):
        rec.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    rec.instance_count("ep", "AllTraffic", 2)
    for _ in range(2):
        rec.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    (point,) = world.stats("InvocationsPerInstance", "Sum")
    assert point["Sum"] == pytest.approx(8 / 4 + 2 / 2)


def test_percentiles_are_within_the_documented_precision(world: World) -> None:
    rng = random.Random(7)
    values = sorted(int(rng.lognormvariate(8, 1.2)) + 1 for _ in range(5000))
    for v in values:
        world.recorder.invocation("ep", "AllTraffic", None, "2xx", v, 10, 1, 1)
    wanted = ["p50", "p90", "p99", "p99.9"]
    (point,) = world.stats("ModelLatency", ExtendedStatistics=wanted)
    for stat in wanted:
        rank = float(stat[1:]) / 100 * len(values)
        exact = values[max(int(rank + 0.5) - 1, 0)]
        got = point["ExtendedStatistics"][stat]
        assert abs(got - exact) <= ACCURACY * exact + 1, (stat, got, exact)


def test_multimodel_metrics_per_variant_and_per_model(world: World) -> None:
    rec = world.recorder
    for model in ("a", "b"):
        rec.model_cache("ep", "AllTraffic", model, False, 250_000)
        rec.model_loaded("ep", "AllTraffic", model, 100_000, 150_000, 1 if model == "a" else 2)
        for _ in range(3):
            rec.model_cache("ep", "AllTraffic", model, True, None)
    rec.model_unloaded("ep", "AllTraffic", "a", 5_000, 1)
    (loads,) = world.stats("ModelLoadingTime", "SampleCount")
    assert loads["SampleCount"] == 2  # one load per model
    (hits,) = world.stats("ModelCacheHit", "Sum", "SampleCount", "Average")
    assert (hits["Sum"], hits["SampleCount"], hits["Average"]) == (6.0, 8.0, 0.75)
    (count,) = world.stats("LoadedModelCount", "Maximum", "Minimum")
    assert (count["Maximum"], count["Minimum"]) == (2.0, 1.0)
    model_a = [*EP, {"Name": "TargetModel", "Value": "a"}]
    (a_hits,) = world.stats("ModelCacheHit", "Sum", dimensions=model_a)
    assert a_hits["Sum"] == 3.0
    (wait,) = world.stats("ModelLoadingWaitTime", "Maximum", dimensions=model_a)
    assert wait["Maximum"] == 250_000


def test_high_resolution_concurrency_at_ten_seconds(world: World) -> None:
    start = world.clock.now
    for offset, in_flight in ((0, 3), (5, 4), (10, 1), (25, 9)):
        world.clock.now = start + offset
        world.recorder.concurrent_requests("ep", "AllTraffic", in_flight)
    world.clock.now = start
    points = world.stats("ConcurrentRequestsPerModel", "Maximum", period=10)
    assert [p["Maximum"] for p in points] == [4.0, 1.0, 9.0]
    (minute,) = world.stats("ConcurrentRequestsPerModel", "Maximum", period=60)
    assert minute["Maximum"] == 9.0


def test_instance_samples_and_backlog_in_their_namespaces(world: World) -> None:
    world.recorder.instance_sample("ep", "AllTraffic", 150.0, 40.0, 12.5)
    world.recorder.instance_sample("ep", "AllTraffic", 50.0, 60.0, 12.5)
    world.recorder.backlog("ep", 6, 3.0, 42.0, False)
    (cpu,) = world.stats("CPUUtilization", "Average", namespace="/aws/sagemaker/Endpoints")
    assert (cpu["Average"], cpu["Unit"]) == (100.0, "Percent")
    only_endpoint = [{"Name": "EndpointName", "Value": "ep"}]
    (age,) = world.stats("ApproximateAgeOfOldestRequest", "Maximum", dimensions=only_endpoint)
    assert (age["Maximum"], age["Unit"]) == (42.0, "Seconds")


def test_get_metric_data_math_and_list_metrics(world: World) -> None:
    for status in ("2xx", "2xx", "2xx", "4xx"):
        world.recorder.invocation("ep", "AllTraffic", None, status, 100, 10, 1, 1)
    world.recorder.invocation("ep", "Canary", None, "2xx", 100, 10, 1, 1)

    def stat(qid: str, name: str, variant: str = "AllTraffic") -> dict[str, object]:
        dims = [EP[0], {"Name": "VariantName", "Value": variant}]
        metric = {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dims}
        return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}

    answer = world.cw.get_metric_data(
        MetricDataQueries=[
            {**stat("m1", "Invocations"), "ReturnData": False},
            stat("m2", "Invocation4XXErrors"),
            {**stat("m3", "Invocations", "Canary"), "ReturnData": False},
            {"Id": "rate", "Expression": "m2 / m1 * 100", "Label": "error rate"},
            {"Id": "total", "Expression": "SUM([m1, m3])"},
            {"Id": "all", "Expression": "SUM(METRICS()) - m2"},
        ],
        StartTime=world.clock.at(-600),
        EndTime=world.clock.at(600),
    )
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert set(results) == {"m2", "rate", "total", "all"}
    assert results["rate"]["Values"] == [25.0] and results["rate"]["Label"] == "error rate"
    assert results["total"]["Values"] == [5.0]
    assert results["all"]["Values"] == [5.0]
    listed = world.cw.list_metrics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=[{"Name": "VariantName", "Value": "Canary"}],
    )["Metrics"]
    assert [m["Dimensions"] for m in listed] == [
        [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "Canary"}]
    ]


def test_get_metric_data_orders_newest_first_unless_asked(world: World) -> None:
    start = world.clock.now
    for offset, count in ((-120, 1), (0, 2)):
        world.clock.now = start + offset
        for _ in range(count):
            world.recorder.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    world.clock.now = start
    metric = {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": EP}
    query = {"Id": "m1", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}
    window = {"StartTime": world.clock.at(-600), "EndTime": world.clock.at(600)}
    (newest,) = world.cw.get_metric_data(MetricDataQueries=[query], **window)["MetricDataResults"]
    (oldest,) = world.cw.get_metric_data(
        MetricDataQueries=[query], ScanBy="TimestampAscending", **window
    )["MetricDataResults"]
    assert newest["Values"] == [2.0, 1.0] and oldest["Values"] == [1.0, 2.0]
    assert newest["Timestamps"][0] > newest["Timestamps"][1]
