"""InvokeEndpointWithResponseStream through the real boto3 client against a real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from typer.testing import CliRunner

from gateway.cli.invoke import invoke
from gateway.edge.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import contract_servers, endpoint, sagemaker_client, serve


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def gateway_url(gate: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    servers = {
        "five": {
            "CONTRACT_STREAM_PARTS": "5",
            "CONTRACT_STREAM_PAUSE": "0.05",
            "CONTRACT_STREAM_GATE": str(gate / "go"),
            "CONTRACT_STREAM_MARKER": str(gate / "last-produced"),
        },
        "broken": {"CONTRACT_STREAM_PARTS": "5", "CONTRACT_STREAM_FAIL_AFTER": "2"},
        "plain": {"CONTRACT_STREAM_PARTS": "3", "CONTRACT_CONTENT_TYPE": "text/x-parts"},
        "upper": {"CONTRACT_MODE": "upper"},
        "e500": {"CONTRACT_STATUS": "500", "CONTRACT_MESSAGE": "division by zero"},
    }
    with contract_servers(servers) as urls:

        def single(name: str, server: str) -> Any:
            return endpoint(urls, name=name, containers=[{"command": [server]}])

        runtimes = [
            single("five", "five"),
            single("broken", "broken"),
            single("plain", "plain"),
            single("failing", "e500"),
            endpoint(
                urls,
                name="chain",
                containers=[
                    {"command": ["upper"], "hostname": "first"},
                    {"command": ["plain"], "hostname": "last"},
                ],
            ),
            endpoint(
                urls,
                name="direct",
                execution="Direct",
                containers=[{"command": ["plain"], "hostname": "streamer"}],
            ),
        ]
        settings = GatewaySettings.model_validate({"state_dir": tmp_path_factory.mktemp("gw")})
        with serve(create_app(runtimes, settings)) as url:
            yield url


_clients: dict[str, Any] = {}


def stream(url: str, name: str, body: bytes = b"hi", **kwargs: Any) -> dict[str, Any]:
    """One call through a client kept for the module (its connections are pooled, not leaked)."""
    client = _clients.get(url) or _clients.setdefault(url, sagemaker_client(url))
    response: dict[str, Any] = client.invoke_endpoint_with_response_stream(
        EndpointName=name, Body=body, ContentType="text/plain", **kwargs
    )
    return response


def parts(response: dict[str, Any]) -> list[bytes]:
    return [event["PayloadPart"]["Bytes"] for event in response["Body"]]


def test_the_first_part_arrives_before_the_last_is_produced(gateway_url: str, gate: Path) -> None:
    response = stream(gateway_url, "five")
    events = iter(response["Body"])
    first = next(events)
    # The container waits for the gate before it produces its last part: had the gateway
    # buffered the answer, the first part could not be here while the marker is missing.
    assert first == {"PayloadPart": {"Bytes": b"1:hi\n"}}
    assert not (gate / "last-produced").exists()
    (gate / "go").touch()
    rest = [event["PayloadPart"]["Bytes"] for event in events]
    assert rest == [b"2:hi\n", b"3:hi\n", b"4:hi\n", b"5:hi\n"]
    assert (gate / "last-produced").exists()


def test_headers_name_the_content_type_and_variant(gateway_url: str) -> None:
    response = stream(gateway_url, "plain", CustomAttributes="trace=1")
    assert response["ContentType"] == "text/x-parts"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert b"".join(parts(response)) == b"1:hi\n2:hi\n3:hi\n"


def test_a_container_failing_after_two_parts_gives_two_parts_then_an_error(
    gateway_url: str,
) -> None:
    response = stream(gateway_url, "broken")
    received: list[bytes] = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    response["Body"].close()
    assert received == [b"1:hi\n", b"2:hi\n"]
    error = caught.value.response["Error"]
    assert error["Code"] == "ModelStreamError"
    assert "closed its streamed answer before it ended" in error["Message"]


def test_a_serial_endpoint_streams_its_last_step(gateway_url: str) -> None:
    assert parts(stream(gateway_url, "chain")) == [b"1:HI\n", b"2:HI\n", b"3:HI\n"]


def test_direct_endpoints_stream_the_named_container(gateway_url: str) -> None:
    response = stream(gateway_url, "direct", TargetContainerHostname="streamer")
    assert parts(response) == [b"1:hi\n", b"2:hi\n", b"3:hi\n"]
    with pytest.raises(ClientError) as caught:
        stream(gateway_url, "direct")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "X-Amzn-SageMaker-Target-Container-Hostname" in str(caught.value)


def test_errors_before_the_stream_are_ordinary_sagemaker_errors(gateway_url: str) -> None:
    with pytest.raises(ClientError) as caught:
        stream(gateway_url, "failing")
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 500
    assert "division by zero" in error["OriginalMessage"]
    with pytest.raises(ClientError) as missing:
        stream(gateway_url, "nope")
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account 000000000000 not found" in str(missing.value)
    with pytest.raises(ClientError) as variant:
        stream(gateway_url, "plain", TargetVariant="Other")
    assert "Target variant Other not found" in str(variant.value)


def test_metrics_count_streamed_invocations(gateway_url: str) -> None:
    import httpx

    before = _count(httpx.get(f"{gateway_url}/metrics").text, "plain")
    parts(stream(gateway_url, "plain"))
    assert _count(httpx.get(f"{gateway_url}/metrics").text, "plain") == before + 1


def _count(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith("tandem_invocations_total{") and f'endpoint="{name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run_cli(*args: str) -> tuple[int, bytes, str]:
    """``tandem invoke --stream`` in-process, as the shell would run it."""
    app = typer.Typer()
    app.command("invoke")(invoke)
    app.command("unused")(lambda: None)  # two commands, so `invoke` is a subcommand as in `tandem`
    result = CliRunner().invoke(app, ["invoke", "--stream", *args])
    return result.exit_code, result.stdout_bytes, result.stderr


def test_the_cli_prints_the_parts(gateway_url: str) -> None:
    code, out, err = run_cli("plain", "--body", "hi", "--url", gateway_url)
    assert code == 0, err
    assert out == b"1:hi\n2:hi\n3:hi\n"
    assert "text/x-parts" in err
    assert "3 parts" in err


def test_the_cli_reports_a_broken_stream_after_its_parts(gateway_url: str) -> None:
    code, out, err = run_cli("broken", "--body", "hi", "--url", gateway_url)
    assert code == 1
    assert out == b"1:hi\n2:hi\n"
    assert "ModelStreamError (StreamBroken)" in err
    code, out, err = run_cli("failing", "--url", gateway_url)
    assert code == 1
    assert out == b""
    assert "ModelError (424)" in err


def test_sigv4_covers_the_streaming_route(tmp_path: Path) -> None:
    with contract_servers({"plain": {"CONTRACT_STREAM_PARTS": "2"}}) as urls:
        runtime = endpoint(urls, name="signed", containers=[{"command": ["plain"]}])
        settings = GatewaySettings.model_validate(
            {"state_dir": tmp_path, "auth": "sigv4", "sigv4_credentials": "AKIDSTREAM:s3cr3t"}
        )
        with serve(create_app([runtime], settings)) as url:

            def client(secret: str) -> Any:
                return boto3.client(
                    "sagemaker-runtime",
                    endpoint_url=url,
                    region_name="eu-west-3",
                    aws_access_key_id="AKIDSTREAM",
                    aws_secret_access_key=secret,
                    config=Config(retries={"max_attempts": 0}),
                )

            response = client("s3cr3t").invoke_endpoint_with_response_stream(
                EndpointName="signed", Body=b"x"
            )
            assert parts(response) == [b"1:x\n", b"2:x\n"]
            with pytest.raises(ClientError) as caught:
                client("wrong").invoke_endpoint_with_response_stream(
                    EndpointName="signed", Body=b"x"
                )
            assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
