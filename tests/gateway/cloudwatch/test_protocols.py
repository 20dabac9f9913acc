"""The three protocols botocore's ``cloudwatch`` model lists, each answered in its own shape."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import botocore.session
import httpx
import pytest

from gateway.cloudwatch import cbor
from tests.gateway.cloudwatch.conftest import EP, World, client_for

XMLNS = "{http://monitoring.amazonaws.com/doc/2010-08-01/}"


def test_boto3_picks_json_by_default_and_cbor_is_answered_too(world: World) -> None:
    """The model lists CBOR first, but botocore resolves by its own priority (JSON 1.0 first)."""
    metadata = botocore.session.get_session().get_service_model("cloudwatch").metadata
    assert metadata["protocols"] == ["smithy-rpc-v2-cbor", "json", "query"]
    assert world.cw.meta.service_model.resolved_protocol == "json"
    world.recorder.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    body = cbor.dumps(
        {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocations",
            "Dimensions": EP,
            "StartTime": world.clock.at(-600),
            "EndTime": world.clock.at(600),
            "Period": 60,
            "Statistics": ["Sum"],
        }
    )
    reply = httpx.post(
        f"{world.url}/service/GraniteServiceVersion20100801/operation/GetMetricStatistics",
        content=body,
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
    )
    assert reply.status_code == 200
    assert reply.headers["smithy-protocol"] == "rpc-v2-cbor"
    (point,) = cbor.loads(reply.content)["Datapoints"]
    assert point["Sum"] == 1.0


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json", "query"])
def test_each_protocol_reads_and_writes_the_same_data(world: World, protocol: str) -> None:
    client = client_for(world.url, protocol)
    assert client.meta.service_model.resolved_protocol == protocol
    client.put_metric_data(
        Namespace="Shop/Checkout",
        MetricData=[
            {"MetricName": "Latency", "Value": 40.0, "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Values": [10.0, 20.0], "Counts": [2.0, 1.0],
             "Unit": "Milliseconds"},
        ],
    )  # fmt: skip
    answer = client.get_metric_statistics(
        Namespace="Shop/Checkout",
        MetricName="Latency",
        StartTime=world.clock.at(-600),
        EndTime=world.clock.at(600),
        Period=60,
        Statistics=["Sum", "SampleCount", "Maximum"],
    )
    (point,) = answer["Datapoints"]
    assert (point["Sum"], point["SampleCount"], point["Maximum"]) == (80.0, 4.0, 40.0)
    assert point["Unit"] == "Milliseconds"
    # The default client reads what another protocol wrote.
    listed = world.cw.list_metrics(Namespace="Shop/Checkout")["Metrics"]
    assert [m["MetricName"] for m in listed] == ["Latency"]


def test_a_raw_query_request_gets_xml_in_cloudwatchs_namespace(world: World) -> None:
    world.recorder.invocation("ep", "AllTraffic", None, "2xx", 100, 10, 1, 1)
    form = {
        "Action": "GetMetricStatistics",
        "Version": "2010-08-01",
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocations",
        "Dimensions.member.1.Name": "EndpointName",
        "Dimensions.member.1.Value": "ep",
        "Dimensions.member.2.Name": "VariantName",
        "Dimensions.member.2.Value": "AllTraffic",
        "StartTime": world.clock.at(-600).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndTime": world.clock.at(600).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Period": "60",
        "Statistics.member.1": "Sum",
    }
    reply = httpx.post(world.url + "/", data=form)
    assert reply.status_code == 200, reply.text
    root = ET.fromstring(reply.text)
    assert root.tag == f"{XMLNS}GetMetricStatisticsResponse"
    sums = root.findall(f".//{XMLNS}Datapoints/{XMLNS}member/{XMLNS}Sum")
    assert [s.text for s in sums] == ["1.0"]
    bad = httpx.post(world.url + "/", data={**form, "Period": "90"})
    assert bad.status_code == 400
    error = ET.fromstring(bad.text)
    assert error.findtext(f".//{XMLNS}Code") == "InvalidParameterValue"
    assert "Period" in (error.findtext(f".//{XMLNS}Message") or "")


def test_other_posts_to_slash_still_reach_the_rest_of_the_app(world: World) -> None:
    """A request that is not CloudWatch's is not taken by its routes (here: no such route)."""
    reply = httpx.post(
        world.url + "/",
        content=b"{}",
        headers={"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/json"},
    )
    assert reply.status_code in (404, 405)
    assert "smithy-protocol" not in reply.headers


def test_malformed_bodies_are_serialization_errors_not_500s(world: World) -> None:
    path = "/service/GraniteServiceVersion20100801/operation/ListMetrics"
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}
    for body in (b"\xff\xff", b"\x9f", cbor.dumps([1, 2]), cbor.dumps({"Namespace": 5})):
        reply = httpx.post(world.url + path, content=body, headers=headers)
        assert reply.status_code == 400, body
        assert cbor.loads(reply.content)["__type"].endswith("#SerializationException")
    reply = httpx.post(
        world.url + "/",
        content=b"{not json",
        headers={
            "X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    assert reply.status_code == 400
    assert reply.json()["__type"].endswith("#SerializationException")
    unknown = httpx.post(
        world.url + "/", data={"Action": "DescribeAlarms", "Version": "2010-08-01"}
    )
    assert unknown.status_code == 400 and "<Code>InvalidAction</Code>" in unknown.text


def test_a_large_put_comes_gzipped_and_list_metrics_pages_through_it(world: World) -> None:
    encodings: list[bytes | None] = []
    world.cw.meta.events.register(
        "before-send.cloudwatch.PutMetricData",
        lambda request, **_: encodings.append(request.headers.get("Content-Encoding")),
    )
    data = [{"MetricName": f"m{i:04d}", "Value": float(i)} for i in range(1000)]
    world.cw.put_metric_data(Namespace="Bulk", MetricData=data)
    assert encodings == [b"gzip"]  # botocore compresses a body over 10 KB
    names: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = world.cw.list_metrics(Namespace="Bulk", **token)
        assert len(page["Metrics"]) <= 500
        names += [m["MetricName"] for m in page["Metrics"]]
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert names == [d["MetricName"] for d in data]
    with pytest.raises(world.cw.exceptions.InvalidNextToken):
        world.cw.list_metrics(Namespace="Bulk", NextToken="not-a-token")
