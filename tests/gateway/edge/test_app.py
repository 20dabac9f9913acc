"""The runtime API through the real boto3 client: routing, chaining, headers, errors, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.live import ContainerState, Instance
from gateway.logstreams import instance_id
from gateway.settings import MAX_PAYLOAD_BYTES, GatewaySettings
from tests.gateway.harness import (
    contract_process,
    contract_servers,
    endpoint,
    sagemaker_client,
    serve,
)
from tests.support import PYTHON

SERVERS = {
    "one": {"CONTRACT_MARKER": "|1"},
    "two": {"CONTRACT_MODE": "upper", "CONTRACT_MARKER": "|2"},
    "three": {"CONTRACT_MARKER": "|3"},
    "mid": {"CONTRACT_CONTENT_TYPE": "text/x-mid"},
    "headers": {"CONTRACT_MODE": "headers"},
    "e415": {"CONTRACT_STATUS": "415", "CONTRACT_MESSAGE": "content type text/x-mid not supported"},
    "e500": {"CONTRACT_STATUS": "500", "CONTRACT_MESSAGE": "division by zero"},
    "slow": {"CONTRACT_SLEEP": "20"},
    "triple": {"CONTRACT_REPEAT": "3"},
}


def c(server: str, hostname: str | None = None) -> dict[str, Any]:
    return {"command": [server], **({"hostname": hostname} if hostname else {})}


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    with contract_servers(SERVERS) as started:
        yield started


@pytest.fixture(scope="module")
def endpoints(urls: dict[str, str]) -> dict[str, Instance]:
    specs: list[dict[str, Any]] = [
        {
            "name": "direct",
            "execution": "Direct",
            "containers": [
                c("one", "alpha"),
                c("two", "beta"),
                c("headers", "inspect"),
                c("e415", "picky"),
                c("e500", "broken"),
            ],
        },
        {"name": "chain", "containers": [c("one"), c("two"), c("three")]},
        {"name": "chain-first", "containers": [c("headers"), c("one")]},
        {"name": "chain-last", "variant": "Blue", "containers": [c("mid"), c("headers")]},
        {"name": "chain-415", "containers": [c("mid", "pre"), c("e415", "model")]},
        {"name": "chain-big", "containers": [c("triple"), c("one")]},
        {
            "name": "chain-slow",
            "timeout": 1.0,
            "containers": [c("one", "quick"), c("slow", "sleepy")],
        },
        {"name": "down", "containers": [c("one", "pre"), c("two", "post")]},
    ]
    return {s["name"]: endpoint(urls, **s) for s in specs}


@pytest.fixture(scope="module")
def gateway(endpoints: dict[str, Instance]) -> Iterator[str]:
    app = create_app(list(endpoints.values()), GatewaySettings())
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Any:
    return sagemaker_client(gateway)


def invoke(client: Any, name: str, body: bytes = b"abc", **kwargs: Any) -> dict[str, Any]:
    response = client.invoke_endpoint(EndpointName=name, Body=body, **kwargs)
    response["Payload"] = response["Body"].read()
    return response


def test_direct_routes_on_target_hostname(client: Any) -> None:
    alpha = invoke(client, "direct", ContentType="text/plain", TargetContainerHostname="alpha")
    beta = invoke(client, "direct", ContentType="text/plain", TargetContainerHostname="beta")
    assert alpha["Payload"] == b"abc|1"
    assert beta["Payload"] == b"ABC|2"
    assert alpha["ContentType"] == "text/plain"
    assert alpha["InvokedProductionVariant"] == "AllTraffic"
    assert len(alpha["ResponseMetadata"]["RequestId"]) == 36


def test_direct_forwards_only_contract_headers(client: Any) -> None:
    answer = invoke(
        client,
        "direct",
        ContentType="application/json",
        Accept="text/csv",
        CustomAttributes="trace=1",
        InferenceId="inf-7",
        TargetContainerHostname="inspect",
    )
    received = json.loads(answer["Payload"])
    assert received["content-type"] == "application/json"
    assert received["accept"] == "text/csv"
    assert received["x-amzn-sagemaker-custom-attributes"] == "trace=1"
    assert received["x-amzn-sagemaker-inference-id"] == "inf-7"
    forwarded = {
        "content-type",
        "accept",
        "x-amzn-sagemaker-custom-attributes",
        "x-amzn-sagemaker-inference-id",
        "content-length",
        "host",
    }
    assert set(received) <= forwarded, set(received) - forwarded
    assert answer["CustomAttributes"] == "trace=1"


def test_direct_without_or_with_unknown_hostname_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="Target-Container-Hostname"):
        invoke(client, "direct")
    with pytest.raises(client.exceptions.ValidationError, match=r"gamma not found.*alpha, beta"):
        invoke(client, "direct", TargetContainerHostname="gamma")


def test_hostname_on_serial_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="Serial"):
        invoke(client, "chain", TargetContainerHostname="container-1")


def test_unknown_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError) as info:
        invoke(client, "nowhere")
    message = info.value.response["Error"]["Message"]
    assert message == "Endpoint nowhere of account 000000000000 not found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_serial_chains_in_order_and_propagates_content_type(client: Any) -> None:
    answer = invoke(client, "chain", body=b"abc", ContentType="text/x-one")
    assert answer["Payload"] == b"ABC|1|2|3"
    assert answer["ContentType"] == "text/x-one"


def test_serial_first_step_gets_client_content_type_and_no_accept(client: Any) -> None:
    answer = invoke(client, "chain-first", ContentType="text/csv", Accept="application/json")
    received = json.loads(answer["Payload"].removesuffix(b"|1"))
    assert received["content-type"] == "text/csv"
    assert "accept" not in received


def test_serial_last_step_gets_previous_content_type_and_client_accept(client: Any) -> None:
    answer = invoke(
        client,
        "chain-last",
        ContentType="text/csv",
        Accept="application/json",
        CustomAttributes="a=b",
    )
    received = json.loads(answer["Payload"])
    assert received["content-type"] == "text/x-mid"
    assert received["accept"] == "application/json"
    assert received["x-amzn-sagemaker-custom-attributes"] == "a=b"
    assert answer["InvokedProductionVariant"] == "Blue"


def test_custom_attributes_go_to_every_step_and_come_back_from_the_last(client: Any) -> None:
    # Every step gets the client's attributes (not the previous step's); the last one answers.
    answer = invoke(client, "chain", CustomAttributes="tenant=7")
    assert answer["CustomAttributes"] == "tenant=7|3"


def test_server_timing_names_every_step(client: Any) -> None:
    answer = invoke(client, "chain")
    timing = answer["ResponseMetadata"]["HTTPHeaders"]["server-timing"]
    names = [part.split(";")[0] for part in timing.split(", ")]
    assert names == ["container-1", "container-2", "container-3", "overhead"]
    assert all(float(part.split("dur=")[1]) >= 0 for part in timing.split(", "))


def test_client_error_from_a_container_is_model_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "direct", TargetContainerHostname="picky")
    error = info.value.response
    assert error["OriginalStatusCode"] == 415
    assert error["OriginalMessage"] == "content type text/x-mid not supported"
    # Direct: the stream of the one instance's container that failed, named after it.
    assert error["LogStreamArn"] == (
        "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/direct:"
        f"log-stream:AllTraffic/{instance_id('direct')}/picky"
    )
    assert error["Error"]["Message"] == (
        "Received client error (415) from picky with message "
        '"content type text/x-mid not supported".'
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_server_error_from_a_container_is_model_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "direct", TargetContainerHostname="broken")
    assert info.value.response["OriginalStatusCode"] == 500
    assert info.value.response["Error"]["Message"].startswith(
        'Received server error (500) from broken with message "division by zero"'
    )


def test_failing_serial_step_is_named(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "chain-415")
    message = info.value.response["Error"]["Message"]
    assert message.startswith("Received client error (415) from model with message")
    assert "step is 2 of 2" in message
    timing = info.value.response["ResponseMetadata"]["HTTPHeaders"]["server-timing"]
    assert timing.startswith("pre;dur=")


def test_oversize_request_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="exceeds the limit of 6291456"):
        invoke(client, "chain", body=b"x" * (MAX_PAYLOAD_BYTES + 1))
    # The largest allowed body goes through.
    assert (
        len(
            invoke(
                client,
                "direct",
                body=b"x" * (MAX_PAYLOAD_BYTES - 2),
                TargetContainerHostname="alpha",
            )["Payload"]
        )
        == MAX_PAYLOAD_BYTES
    )


def test_oversize_payload_between_steps_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError) as info:
        invoke(client, "chain-big", body=b"y" * (3 * 1024 * 1024))
    message = info.value.response["Error"]["Message"]
    assert "container-1 (step 1 of 2)" in message
    assert "the payload to the next step" in message


def test_deadline_covers_the_chain(client: Any) -> None:
    # The second step answers after 20 s; only the 1 s deadline can make this a ModelError.
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, "chain-slow")
    assert info.value.response["OriginalStatusCode"] == 0
    message = info.value.response["Error"]["Message"]
    assert "timed out while waiting for a response from container sleepy" in message
    assert "step is 2 of 2" in message


def test_container_not_in_service_is_service_unavailable(
    client: Any, endpoints: dict[str, Instance]
) -> None:
    container = endpoints["down"].containers[1]
    container.state = ContainerState.RESTARTING
    try:
        with pytest.raises(client.exceptions.ServiceUnavailable, match="post of endpoint down"):
            invoke(client, "down")
    finally:
        container.state = ContainerState.HEALTHY
    assert invoke(client, "down")["Payload"] == b"ABC|1|2"


def test_killed_container_is_service_unavailable() -> None:
    with contract_process() as (url, proc):
        runtime = endpoint({"victim": url}, name="victim", containers=[c("victim")])
        with serve(create_app([runtime], GatewaySettings())) as gateway_url:
            client = sagemaker_client(gateway_url)
            assert invoke(client, "victim")["Payload"] == b"abc"
            proc.kill()
            proc.wait()
            with pytest.raises(client.exceptions.ServiceUnavailable, match="not reachable"):
                invoke(client, "victim")  # the pooled keep-alive connection is dead
            with pytest.raises(client.exceptions.ServiceUnavailable, match="not reachable"):
                invoke(client, "victim")  # and no new one can open


def test_bad_header_length_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="customAttributes"):
        invoke(client, "chain", CustomAttributes="x" * 1025)


def test_target_model_on_single_model_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError, match="not a multi-model endpoint"):
        invoke(client, "chain", TargetModel="a.tar.gz")


def test_ping_is_200_only_when_every_container_is_healthy(
    gateway: str, endpoints: dict[str, Instance]
) -> None:
    assert httpx.get(f"{gateway}/ping").status_code == 200
    container = endpoints["chain"].containers[0]
    container.state = ContainerState.STARTING
    try:
        answer = httpx.get(f"{gateway}/ping")
        assert answer.status_code == 503
        assert answer.json()["Containers"] == ["chain/container-1: Starting"]
    finally:
        container.state = ContainerState.HEALTHY


def test_endpoints_describe_state(gateway: str, endpoints: dict[str, Instance]) -> None:
    listed = httpx.get(f"{gateway}/endpoints").json()["Endpoints"]
    assert [e["EndpointName"] for e in listed] == list(endpoints)
    endpoints["down"].containers[0].restarts = 2
    endpoints["down"].containers[0].state = ContainerState.FAILED
    try:
        described = httpx.get(f"{gateway}/endpoints/down").json()
    finally:
        endpoints["down"].containers[0].state = ContainerState.HEALTHY
    assert described["EndpointStatus"] == "Failed"
    assert described["Mode"] == "Serial"
    assert described["Containers"][0] == {
        "ContainerHostname": "pre",
        "State": "Failed",
        "Restarts": 2,
        "Mode": "SingleModel",
        "Framework": None,
        "Url": endpoints["down"].containers[0].url,
    }
    missing = httpx.get(f"{gateway}/endpoints/nowhere")
    assert missing.status_code == 400
    assert missing.headers["x-amzn-ErrorType"] == "ValidationError"


def test_metrics_count_invocations_errors_and_latency(gateway: str, client: Any) -> None:
    before = _samples(gateway)
    invoke(client, "chain")
    with pytest.raises(client.exceptions.ModelError):
        invoke(client, "direct", TargetContainerHostname="picky")
    after = _samples(gateway)

    def delta(name: str, **labels: str) -> float:
        key = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        return after.get(key, 0.0) - before.get(key, 0.0)

    chain = {"endpoint": "chain", "variant": "AllTraffic"}
    direct = {"endpoint": "direct", "variant": "AllTraffic"}
    assert delta("tandem_invocations_total", **chain) == 1
    assert delta("tandem_model_latency_seconds_count", **chain) == 1
    assert delta("tandem_overhead_latency_seconds_count", **chain) == 1
    assert delta("tandem_container_latency_seconds_count", container="container-2", **chain) == 1
    assert delta("tandem_invocations_total", **direct) == 1
    assert delta("tandem_invocation_model_errors_total", **direct) == 1
    assert delta("tandem_invocation_4xx_errors_total", **direct) == 1
    assert delta("tandem_invocation_5xx_errors_total", **direct) == 0
    assert (
        after['tandem_container_up{container="alpha",endpoint="direct",variant="AllTraffic"}'] == 1
    )


def _samples(gateway: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(f"{gateway}/metrics")
    assert answer.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_gateway_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, gateway.edge.app, gateway.cli.invoke; "
        "heavy = {'torch', 'tensorflow', 'sklearn', 'joblib', 'aiohttp', 'httpx'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
