"""Issue 23's reproductions on a real ``tandem serve``: numbers that are not finite, and the
edges of the parsers (nesting, size, NUL bytes), each answered in SageMaker's shape.

One gateway serves the whole module (its endpoint runs the standard-library contract server on
two variants); every test leaves it serving, and checks it still answers afterwards.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.gateway.lifecycle.conftest import clients, container, invoke, wait_status
from tests.support import PYTHON, free_port, running

pytestmark = pytest.mark.slow

JSON11 = "application/x-amz-json-1.1"
ENDPOINT = "two"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("hardening")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(folder / "s")]
    with running([*args, "--port", str(port)], url=url, log=folder / "gateway.log", timeout=60):
        control, _ = clients(url)
        variants = []
        for variant in ("A", "B"):
            control.create_model(ModelName=variant, PrimaryContainer=container(f"|{variant}"))
            variants.append({"VariantName": variant, "ModelName": variant})
        control.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=variants)
        control.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
        wait_status(control, ENDPOINT, "InService")
        yield url


def call(url: str, operation: str, body: bytes | str) -> httpx.Response:
    headers = {"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": JSON11}
    return httpx.post(url, content=body, headers=headers, timeout=60)


def refused(response: httpx.Response, code: str, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == code
    assert fragment in response.json()["message"], response.json()


def serves(url: str) -> None:
    """Every request still gets an answer from one of the two variants."""
    _, runtime = clients(url)
    for _ in range(20):
        assert invoke(runtime, ENDPOINT).split(b"|", 1)[1] in (b"A", b"B")
    weights = described_weights(url)
    assert all(isinstance(w, float) and 0 <= w < 1e38 for w in weights.values()), weights


def described_weights(url: str) -> dict[str, float]:
    control, _ = clients(url)
    variants = control.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    return {v["VariantName"]: v["DesiredWeight"] for v in variants}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_weight_that_is_not_finite_is_refused_at_the_parser(gateway: str, literal: str) -> None:
    body = (
        f'{{"EndpointName": "{ENDPOINT}", "DesiredWeightsAndCapacities": '
        f'[{{"VariantName": "A", "DesiredWeight": {literal}}}]}}'
    )
    response = call(gateway, "UpdateEndpointWeightsAndCapacities", body)
    refused(response, "SerializationException", "finite")
    serves(gateway)


def test_weights_too_large_to_add_up_are_refused(gateway: str) -> None:
    control, _ = clients(gateway)
    with pytest.raises(ClientError) as info:
        control.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT,
            DesiredWeightsAndCapacities=[
                {"VariantName": "A", "DesiredWeight": 1e308},
                {"VariantName": "B", "DesiredWeight": 1e308},
            ],
        )
    error = info.value.response["Error"]
    assert error["Code"] == "SerializationException"
    assert "desiredWeightsAndCapacities.1.member.desiredWeight" in error["Message"]
    serves(gateway)


def test_a_nan_weight_on_a_new_config_is_a_400_not_a_500(gateway: str) -> None:
    body = json.dumps(
        {
            "EndpointConfigName": "nan-config",
            "ProductionVariants": [
                {"VariantName": "A", "ModelName": "A", "InitialVariantWeight": float("nan")},
                {"VariantName": "B", "ModelName": "B", "InitialVariantWeight": 1.0},
            ],
        }
    )
    assert "NaN" in body
    refused(call(gateway, "CreateEndpointConfig", body), "SerializationException", "NaN")
    control, _ = clients(gateway)
    names = [c["EndpointConfigName"] for c in control.list_endpoint_configs()["EndpointConfigs"]]
    assert "nan-config" not in names


def test_deep_nesting_is_a_serialization_exception(gateway: str) -> None:
    for depth in (100, 5000, 100_000):
        body = '{"ModelName": "deep", "PrimaryContainer": ' + "[" * depth + "]" * depth + "}"
        refused(call(gateway, "CreateModel", body), "SerializationException", "nested too deeply")


def test_a_9_mb_body_gets_an_answer_not_a_reset(gateway: str) -> None:
    body = b'{"NameContains": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    refused(call(gateway, "ListModels", body), "SerializationException", "larger than")


def test_a_nul_in_an_environment_value_is_refused(gateway: str) -> None:
    control, _ = clients(gateway)
    with pytest.raises(ClientError) as info:
        control.create_model(ModelName="nul", PrimaryContainer=container("x", BAD="a\x00b"))
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "primaryContainer.environment.BAD" in error["Message"] and "NUL" in error["Message"]
    with pytest.raises(ClientError):
        control.describe_model(ModelName="nul")


def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` as it is (no HTTP client would) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_nul_in_target_model_gets_sagemakers_error_shape(gateway: str) -> None:
    head = (
        f"POST /endpoints/{ENDPOINT}/invocations HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: text/plain\r\nX-Amzn-SageMaker-Target-Model: a\x00b.tar.gz\r\n"
        "Content-Length: 1\r\n\r\nx"
    ).encode()
    answer = raw_request(gateway, head)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400"), answer
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"x-amzn-errortype: validationerror" in headers.lower()
    document: dict[str, Any] = json.loads(body)
    assert document["__type"] == "ValidationError" and "NUL" in document["Message"]
    serves(gateway)


def test_the_state_of_the_gateway_is_intact(gateway: str) -> None:
    """After every refusal above: the weights are the config's, and the endpoint serves."""
    assert described_weights(gateway) == {"A": 1.0, "B": 1.0}
    serves(gateway)
