"""Optional authentication: the real boto3 client signs, the gateway verifies; API keys by httpx."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway.edge.app import create_app
from gateway.edge.auth import auth_middleware
from gateway.settings import GatewaySettings
from tests.gateway.harness import contract_servers, endpoint, serve
from tests.gateway.processes import shell
from tests.gateway.test_serve import serve_args, write_spec
from tests.support import free_port, running

ACCESS, SECRET = "AKIDTANDEMTEST", "s3cr3t/with+chars"
CREDENTIALS = f"{ACCESS}:{SECRET},OTHERKEY:other-secret"
DIRECT = {"X-Amzn-SageMaker-Target-Container-Hostname": "echo"}


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    with contract_servers({"echo": {}}) as started:
        yield started


def app_url(urls: dict[str, str], tmp: Path, **settings: Any) -> Any:
    runtime = endpoint(
        urls,
        name="auth-ep",
        execution="Direct",
        containers=[{"hostname": "echo", "command": ["echo"]}],
    )
    config = GatewaySettings.model_validate({"state_dir": tmp, **settings})
    return serve(create_app([runtime], config))


@pytest.fixture(scope="module")
def sigv4_url(urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with app_url(
        urls, tmp_path_factory.mktemp("sigv4"), auth="sigv4", sigv4_credentials=CREDENTIALS
    ) as url:
        yield url


def client(url: str, access: str = ACCESS, secret: str = SECRET) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="eu-west-3",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5),
    )


def invoke(url: str, body: bytes = b"hello", **kwargs: Any) -> Any:
    return client(url, **kwargs).invoke_endpoint(
        EndpointName="auth-ep",
        Body=body,
        ContentType="application/octet-stream",
        TargetContainerHostname="echo",
        CustomAttributes="a  b,   c",  # extra spaces: SigV4 folds them in the canonical form
    )


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


def test_boto3_with_the_right_credentials_gets_through(sigv4_url: str) -> None:
    body = bytes(range(256)) * 40  # binary, over one read
    reply = invoke(sigv4_url, body)
    assert reply["Body"].read() == body
    assert reply["CustomAttributes"] == "a  b,   c"


def test_the_second_configured_key_works_too(sigv4_url: str) -> None:
    reply = invoke(sigv4_url, access="OTHERKEY", secret="other-secret")
    assert reply["Body"].read() == b"hello"


def test_a_wrong_secret_is_an_invalid_signature(sigv4_url: str) -> None:
    with pytest.raises(ClientError) as exc:
        invoke(sigv4_url, secret="not-the-secret")
    status, code, message = error_of(exc)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "signature we calculated does not match" in message


def test_an_unknown_access_key_is_unrecognized(sigv4_url: str) -> None:
    with pytest.raises(ClientError) as exc:
        invoke(sigv4_url, access="AKIDNOBODY")
    assert error_of(exc)[:2] == (403, "UnrecognizedClientException")


def signed(url: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    """Headers botocore's own signer puts on a POST of ``body``."""
    request = AWSRequest(
        method="POST",
        url=f"{url}/endpoints/auth-ep/invocations",
        data=body,
        headers={"Content-Type": "text/plain", **DIRECT},
    )
    SigV4Auth(Credentials(ACCESS, secret), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_the_signature_covers_the_body(sigv4_url: str) -> None:
    headers = signed(sigv4_url, b"pay 10 euros")
    target = f"{sigv4_url}/endpoints/auth-ep/invocations"
    good = httpx.post(target, content=b"pay 10 euros", headers=headers)
    assert (good.status_code, good.content) == (200, b"pay 10 euros")
    tampered = httpx.post(target, content=b"pay 99 euros", headers=headers)
    assert tampered.status_code == 403
    assert tampered.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_unsigned_and_malformed_requests_are_refused(sigv4_url: str) -> None:
    target = f"{sigv4_url}/endpoints/auth-ep/invocations"
    unsigned = httpx.post(target, content=b"x", headers=DIRECT)
    assert unsigned.status_code == 401
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "Signature Version 4" in unsigned.json()["Message"]
    malformed = httpx.post(target, content=b"x", headers={**DIRECT, "Authorization": "AWS4 x"})
    assert malformed.status_code == 400
    assert malformed.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_ping_stays_open_and_metrics_are_guarded(sigv4_url: str) -> None:
    assert httpx.get(f"{sigv4_url}/ping").status_code == 200
    assert httpx.get(f"{sigv4_url}/metrics").status_code == 401


def test_api_keys_by_header_or_bearer(urls: dict[str, str], tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# one a line\nfirst-key\nsecond-key  # for the batch jobs\n")
    with app_url(urls, tmp_path, auth="api-key", api_keys=f"@{keys}", metrics_open=True) as url:
        target = f"{url}/endpoints/auth-ep/invocations"

        def post(**headers: str) -> httpx.Response:
            return httpx.post(target, content=b"hi", headers={**DIRECT, **headers})

        assert post(**{"X-Api-Key": "first-key"}).content == b"hi"
        assert post(Authorization="Bearer second-key").content == b"hi"
        wrong = post(**{"X-Api-Key": "first-key-but-longer"})
        assert (wrong.status_code, wrong.headers["x-amzn-ErrorType"]) == (
            403,
            "UnrecognizedClientException",
        )
        missing = post()
        assert missing.status_code == 401
        assert "X-Api-Key" in missing.json()["Message"]
        assert httpx.get(f"{url}/metrics").status_code == 200  # metrics_open
        assert httpx.get(f"{url}/ping").status_code == 200


def test_settings_refuse_auth_without_credentials(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="api_keys is empty"):
        GatewaySettings.model_validate({"auth": "api-key", "api_keys": " , "})
    with pytest.raises(ValidationError, match="access_key:secret_key"):
        GatewaySettings.model_validate({"auth": "sigv4", "sigv4_credentials": "no-colon"})
    with pytest.raises(ValidationError, match="cannot read"):
        GatewaySettings.model_validate({"auth": "api-key", "api_keys": f"@{tmp_path}/missing"})


def test_a_network_address_without_auth_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tandem.gateway"):
        assert auth_middleware(GatewaySettings(host="0.0.0.0")) == []
        assert auth_middleware(GatewaySettings()) == []
    warning, info = caplog.records
    assert warning.levelno == logging.WARNING and "WITHOUT authentication" in warning.message
    assert info.levelno == logging.INFO and "127.0.0.1 only" in info.message


def test_tandem_serve_reads_auth_from_the_environment(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "auth-ep", echo={"command": shell("exec $SERVER")})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TANDEM_AUTH": "sigv4", "TANDEM_SIGV4_CREDENTIALS": CREDENTIALS}
    log = tmp_path / "gateway.log"
    with running(serve_args(tmp_path / "state", port, spec), env=env, url=url, log=log) as proc:
        assert invoke(url)["Body"].read() == b"hello"
        with pytest.raises(ClientError) as exc:
            invoke(url, secret="wrong")
        assert error_of(exc)[1] == "InvalidSignatureException"
        assert proc.poll() is None
    assert "authentication: SigV4 (2 access keys)" in log.read_text()


def test_tandem_serve_without_credentials_exits_2(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "auth-ep", echo={"command": shell("touch started; exec $SERVER")})
    result = subprocess.run(
        serve_args(tmp_path / "state", free_port(), spec),
        env={**os.environ, "TANDEM_AUTH": "api-key"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "api_keys is empty" in result.stderr
    assert not (tmp_path / "started").exists()
