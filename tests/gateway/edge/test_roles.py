"""The control plane runs code: only an ``admin`` key may call it, and never an open network.

A real ``tandem serve`` with SigV4 on, and boto3 signing with each key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import PYTHON, free_port, running

CONFIG = Config(retries={"max_attempts": 0})
CREDENTIALS = "AKADMIN:admin-secret:admin,AKPLAIN:plain-secret"


def client(service: str, url: str, access: str, secret: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=CONFIG,
    )


def serve(tmp_path: Path, host: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    args = [PYTHON, "-m", "gateway", "serve", "--state-dir", str(tmp_path / "state")]
    args += ["--port", str(port), "--host", host]
    url = f"http://127.0.0.1:{port}"
    with running(args, env=env, url=url, log=tmp_path / "gateway.log", timeout=60):
        yield url


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[str]:
    env = {"TANDEM_AUTH": "sigv4", "TANDEM_SIGV4_CREDENTIALS": CREDENTIALS}
    yield from serve(tmp_path, "127.0.0.1", env)


def test_an_invoke_key_is_refused_by_every_control_plane_call(signed: str) -> None:
    plain = client("sagemaker", signed, "AKPLAIN", "plain-secret")
    for call in (
        lambda: plain.list_models(),
        lambda: plain.create_model(ModelName="m", PrimaryContainer={"Image": "sklearn"}),
        lambda: plain.describe_endpoint(EndpointName="e"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "admin role" in info.value.response["Error"]["Message"]
    # The same key still reaches the runtime API (which answers that there is no endpoint).
    runtime = client("sagemaker-runtime", signed, "AKPLAIN", "plain-secret")
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="e", Body=b"1")
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_an_admin_key_may_use_the_control_plane(signed: str) -> None:
    admin = client("sagemaker", signed, "AKADMIN", "admin-secret")
    assert admin.list_models()["Models"] == []
    wrong = client("sagemaker", signed, "AKADMIN", "not-the-secret")
    with pytest.raises(ClientError) as info:
        wrong.list_models()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_cloudwatch_logs_takes_its_own_signature_and_the_admin_role(signed: str) -> None:
    # boto3's logs client signs for the service "logs"; the containers' output is the admin's.
    admin = client("logs", signed, "AKADMIN", "admin-secret")
    assert admin.describe_log_groups()["logGroups"] == []
    plain = client("logs", signed, "AKPLAIN", "plain-secret")
    with pytest.raises(ClientError) as info:
        plain.describe_log_groups()
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "logs:DescribeLogGroups" in info.value.response["Error"]["Message"]


def test_cloudwatch_takes_its_own_signature(signed: str) -> None:
    # boto3's cloudwatch client signs for "monitoring" (its signingName in botocore's model).
    admin = client("cloudwatch", signed, "AKADMIN", "admin-secret")
    assert admin.meta.service_model.signing_name == "monitoring"
    assert admin.list_metrics()["Metrics"] == []
    wrong = client("cloudwatch", signed, "AKADMIN", "not-the-secret")
    with pytest.raises(ClientError) as info:
        wrong.list_metrics()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_without_authentication_an_open_address_refuses_the_control_plane(
    tmp_path: Path,
) -> None:
    for url in serve(tmp_path, "0.0.0.0", {}):
        admin = client("sagemaker", url, "x", "x")
        with pytest.raises(ClientError) as info:
            admin.list_models()
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "without authentication" in info.value.response["Error"]["Message"]
