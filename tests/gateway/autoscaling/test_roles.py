"""Application Auto Scaling changes capacity: with SigV4 on, only an ``admin`` key may call it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.gateway.edge.test_roles import CREDENTIALS, client, serve


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[str]:
    env = {"TANDEM_AUTH": "sigv4", "TANDEM_SIGV4_CREDENTIALS": CREDENTIALS}
    yield from serve(tmp_path, "127.0.0.1", env)


def test_an_admin_key_may_scale_and_an_invoke_key_may_not(signed: str) -> None:
    admin = client("application-autoscaling", signed, "AKADMIN", "admin-secret")
    assert admin.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    plain = client("application-autoscaling", signed, "AKPLAIN", "plain-secret")
    with pytest.raises(ClientError) as info:
        plain.describe_scalable_targets(ServiceNamespace="sagemaker")
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "application-autoscaling:DescribeScalableTargets" in error["Message"]
    wrong = client("application-autoscaling", signed, "AKADMIN", "not-the-secret")
    with pytest.raises(ClientError) as info:
        wrong.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
