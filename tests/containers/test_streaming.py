"""A user output_fn that returns a generator streams: from the sklearn container, then via gateway.

The container is the real ``python -m containers serve --framework sklearn`` with a classifier
trained here; the gateway is the real app in uvicorn, called with boto3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EventStreamError

from gateway.edge.app import create_app
from gateway.settings import GatewaySettings
from tests.containers.conftest import Container, StartContainer
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier
from tests.gateway.harness import endpoint, sagemaker_client, serve

ROWS = 4
# The custom attributes steer the generator: a gate file to wait for before the last part (and a
# ``.produced`` file written when it is made), or ``fail-at=N`` to raise while making part N.
STREAMING_OUTPUT_FN = """
import json
import os
import time


def output_fn(prediction, accept, context):
    steer = context.custom_attributes or ""

    def parts():
        rows = prediction.tolist()
        for index, value in enumerate(rows):
            if steer.startswith("fail-at=") and index + 1 == int(steer[8:]):
                raise RuntimeError("part failed on purpose")
            if steer.startswith("/") and index == len(rows) - 1:
                deadline = time.monotonic() + 30
                while not os.path.exists(steer) and time.monotonic() < deadline:
                    time.sleep(0.01)
                open(steer + ".produced", "w").close()
            yield json.dumps({"row": index, "prediction": value}) + "\\n"

    return parts(), "application/jsonlines"
"""


@pytest.fixture(scope="module")
def container(
    start_container: StartContainer, tmp_path_factory: pytest.TempPathFactory
) -> Container:
    model_dir = package(
        tmp_path_factory.mktemp("streaming"), train_classifier(), code=STREAMING_OUTPUT_FN
    )
    return start_container("sklearn", model_dir)


@pytest.fixture(scope="module")
def gateway_url(container: Container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runtime = endpoint({"sk": container.url}, name="sk", containers=[{"command": ["sk"]}])
    settings = GatewaySettings.model_validate({"state_dir": tmp_path_factory.mktemp("gw")})
    with serve(create_app([runtime], settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway_url: str) -> Any:
    return sagemaker_client(gateway_url)


BODY = csv_body(synthetic(ROWS))


def expected(container: Container) -> list[bytes]:
    """What the parts must be: the same classifier's predictions, one JSON line each."""
    answer = httpx.post(
        f"{container.url}/invocations",
        content=BODY,
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    lines = answer.content.decode().splitlines(keepends=True)
    assert len(lines) == ROWS
    return [line.encode() for line in lines]


def test_the_container_sends_each_part_as_it_is_produced(
    container: Container, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    headers = {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": str(gate)}
    with httpx.stream(
        "POST", f"{container.url}/invocations", content=BODY, headers=headers, timeout=60
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["transfer-encoding"] == "chunked"
        assert answer.headers["content-type"].startswith("application/jsonlines")
        chunks = answer.iter_raw()
        first = next(chunks)
        assert json.loads(first)["row"] == 0
        assert not (tmp_path / "go.produced").exists()
        gate.touch()
        rest = b"".join(chunks)
    assert [json.loads(line)["row"] for line in (first + rest).splitlines()] == [0, 1, 2, 3]


def test_boto3_iterates_the_parts_through_the_gateway(
    client: Any, container: Container, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="sk", Body=BODY, ContentType="text/csv", CustomAttributes=str(gate)
    )
    assert response["ContentType"] == "application/jsonlines"
    events = iter(response["Body"])
    first = next(events)["PayloadPart"]["Bytes"]
    assert not (tmp_path / "go.produced").exists()
    gate.touch()
    parts = [first, *(event["PayloadPart"]["Bytes"] for event in events)]
    assert parts == expected(container)
    predictions = [json.loads(part)["prediction"] for part in parts]
    assert predictions == train_classifier().predict(synthetic(ROWS)).tolist()


def test_invoke_endpoint_gets_the_parts_joined(client: Any, container: Container) -> None:
    answer = client.invoke_endpoint(EndpointName="sk", Body=BODY, ContentType="text/csv")
    assert answer["Body"].read() == b"".join(expected(container))


def test_a_generator_failing_midway_is_a_model_stream_error(client: Any) -> None:
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="sk", Body=BODY, ContentType="text/csv", CustomAttributes="fail-at=3"
    )
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["Body"]:
            received.append(json.loads(event["PayloadPart"]["Bytes"])["row"])
    response["Body"].close()
    assert received == [0, 1]
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"


def test_a_generator_failing_at_once_is_an_ordinary_model_error(
    client: Any, container: Container
) -> None:
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint_with_response_stream(
            EndpointName="sk", Body=BODY, ContentType="text/csv", CustomAttributes="fail-at=1"
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 500
    assert "part failed on purpose" in error["OriginalMessage"]
    assert "Traceback" not in error["OriginalMessage"]
    assert container.alive()
