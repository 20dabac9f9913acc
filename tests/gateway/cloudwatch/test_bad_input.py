"""Bad input gets CloudWatch's error codes (those botocore's model declares), naming the parameter.

Sent with parameter validation off, so the gateway's own checks are what is under test.
"""

from __future__ import annotations

from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.gateway.cloudwatch.conftest import EP, KEYS, World

RAW = Config(retries={"max_attempts": 0}, parameter_validation=False)


def raw_client(world: World) -> Any:
    return boto3.client("cloudwatch", endpoint_url=world.url, config=RAW, **KEYS)


def statistics(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocations",
        "Dimensions": EP,
        "StartTime": world.clock.at(-600),
        "EndTime": world.clock.at(600),
        "Period": 60,
        "Statistics": ["Sum"],
        **overrides,
    }


def stat_query(qid: str = "m1", **overrides: Any) -> dict[str, Any]:
    metric = {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": EP}
    return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum", **overrides}}


GET_STATISTICS = [
    ({"Statistics": ["Median"]}, "InvalidParameterValue", "Statistics.member.1"),
    ({"Statistics": [], "ExtendedStatistics": ["p101"]}, "InvalidParameterValue", "p101"),
    ({"Statistics": [], "ExtendedStatistics": ["tm99"]}, "InvalidParameterValue", "tm99"),
    ({"ExtendedStatistics": ["p99"]}, "InvalidParameterCombination", "not both"),
    ({"Statistics": []}, "InvalidParameterCombination", "Statistics"),
    ({"Period": 90}, "InvalidParameterValue", "multiple of 60"),
    ({"Period": 7}, "InvalidParameterValue", "1, 5, 10, 30"),
    ({"Period": 0}, "InvalidParameterValue", "Period"),
    ({"Period": 1}, "InvalidParameterCombination", "1440"),  # 1,200 seconds at 1 s is fine...
    ({"MetricName": None}, "MissingParameter", "MetricName"),
    ({"StartTime": None}, "MissingParameter", "StartTime"),
    ({"Dimensions": [{"Name": "EndpointName"}]}, "MissingParameter", "Dimensions.member.1.Value"),
]


@pytest.mark.parametrize(("change", "code", "named"), GET_STATISTICS)
def test_get_metric_statistics_refuses(
    world: World, change: dict[str, Any], code: str, named: str
) -> None:
    params = {k: v for k, v in statistics(world, **change).items() if v is not None}
    if change.get("Period") == 1:  # ...but 2 hours at 1 s is 7,200 datapoints
        params["StartTime"] = world.clock.at(-7200)
    with pytest.raises(ClientError) as caught:
        raw_client(world).get_metric_statistics(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == code
    assert named in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_time_ranges_backwards_or_past_the_retention(world: World) -> None:
    client = raw_client(world)
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="StartTime"):
        client.get_metric_statistics(**statistics(world, StartTime=world.clock.at(600)))
    old = statistics(world, StartTime=world.clock.at(-30 * 3600), Period=3600)
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="24 hours"):
        client.get_metric_statistics(**old)


GET_DATA = [
    ([stat_query("M1")], "InvalidParameterValue", "MetricDataQueries.member.1.Id"),
    ([stat_query(), stat_query()], "InvalidParameterValue", "m1"),
    ([stat_query(Stat="Mean")], "InvalidParameterValue", "MetricDataQueries.member.1.MetricStat"),
    ([stat_query(Period=45)], "InvalidParameterValue", "Period"),
    ([{"Id": "e1"}], "InvalidParameterCombination", "MetricStat and Expression"),
    ([{**stat_query(), "Expression": "m1"}], "InvalidParameterCombination", "exactly one"),
    ([stat_query(), {"Id": "e1", "Expression": "m1 +"}], "InvalidParameterValue", "member.2"),
    ([{"Id": "e1", "Expression": "m9 * 2"}], "InvalidParameterValue", "m9"),
    ([{"Id": "e1", "Expression": "e2"}, {"Id": "e2", "Expression": "e1"}], "InvalidParameterValue",
     "Expression"),
    ([{"Id": "e1", "Expression": "FOO(1)"}], "InvalidParameterValue", "FOO"),
    ([stat_query(f"m{i}") for i in range(501)], "LimitExceededException", "500"),
    ([stat_query(Period=1), stat_query("m2", Period=1)], "LimitExceededException", "100800"),
]  # fmt: skip


@pytest.mark.parametrize(("queries", "code", "named"), GET_DATA)
def test_get_metric_data_refuses(
    world: World, queries: list[dict[str, Any]], code: str, named: str
) -> None:
    span = 20 * 3600 if code == "LimitExceededException" else 600
    with pytest.raises(ClientError) as caught:
        raw_client(world).get_metric_data(
            MetricDataQueries=queries,
            StartTime=world.clock.at(-span),
            EndTime=world.clock.at(600),
        )
    error = caught.value.response["Error"]
    assert (error["Code"], named in error["Message"]) == (code, True), error


PUT = [
    ({"Namespace": "AWS/SageMaker"}, "InvalidParameterValue", "Namespace"),
    ({"MetricData": [{"MetricName": "x"}]}, "MissingParameter", "MetricData.member.1.Value"),
    ({"MetricData": [{"MetricName": "x", "Value": 1.0, "StatisticValues": {
        "SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0}}]},
     "InvalidParameterCombination", "MetricData.member.1.Value"),
    ({"MetricData": [{"MetricName": "x", "Value": 1.0, "StorageResolution": 10}]},
     "InvalidParameterValue", "StorageResolution"),
    ({"MetricData": [{"MetricName": "x", "Values": [1.0, 2.0], "Counts": [1.0]}]},
     "InvalidParameterValue", "Counts"),
    ({"MetricData": [{"MetricName": "x", "Value": 1.0}] * 1001}, "InvalidParameterValue", "1000"),
    ({"MetricData": [{"MetricName": "x", "Value": 1.0, "Dimensions": [
        {"Name": "a", "Value": "1"}, {"Name": "a", "Value": "2"}]}]},
     "InvalidParameterCombination", "a"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "named"), PUT)
def test_put_metric_data_refuses_and_writes_nothing(
    world: World, change: dict[str, Any], code: str, named: str
) -> None:
    params = {"Namespace": "Shop", "MetricData": [{"MetricName": "x", "Value": 1.0}], **change}
    with pytest.raises(ClientError) as caught:
        raw_client(world).put_metric_data(**params)
    error = caught.value.response["Error"]
    assert (error["Code"], named in error["Message"]) == (code, True), error
    assert world.service.store.point_count() == 0


def test_a_bad_timestamp_in_one_datum_keeps_the_others_out_too(world: World) -> None:
    data = [
        {"MetricName": "ok", "Value": 1.0},
        {"MetricName": "late", "Value": 1.0, "Timestamp": world.clock.at(3 * 3600)},
    ]
    client = raw_client(world)
    with pytest.raises(client.exceptions.InvalidParameterValueException, match=r"member\.2"):
        client.put_metric_data(Namespace="Shop", MetricData=data)
    assert client.list_metrics(Namespace="Shop")["Metrics"] == []


def test_a_member_of_the_wrong_type_is_a_serialization_error(world: World) -> None:
    body = {"Namespace": "Shop", "MetricData": [{"MetricName": "x", "Value": "lots"}]}
    reply = httpx.post(
        world.url + "/",
        json=body,
        headers={
            "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    assert reply.status_code == 400
    assert reply.headers["x-amzn-query-error"] == "SerializationException;Sender"
    assert "MetricData.member.1.Value" in reply.json()["message"]
