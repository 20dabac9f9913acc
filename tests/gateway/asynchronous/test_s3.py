"""Inputs and answers on S3 (the moto server): boto3 submits, the answer appears as one object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, toy
from tests.gateway.s3server import moto_s3
from tests.support import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Any]]:
    folder = tmp_path_factory.mktemp("s3")
    with moto_s3(folder, "inputs", "answers") as (url, s3):
        specs = [
            spec("echo", "s3://answers/out", failure="s3://answers/failed"),
            spec("headers", "s3://answers/headers/", containers=[toy(CONTRACT_MODE="headers")]),
            spec("broken", "s3://answers/broken", containers=[toy(CONTRACT_STATUS=503)]),
        ]
        with gateway(folder, specs, s3=url) as running_gateway:
            yield running_gateway, s3


def wait_object(s3: Any, bucket: str, key: str, timeout: float = 60.0) -> bytes:
    def get() -> bytes | None:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None
        return body

    return wait_until(get, timeout=timeout, what=f"s3://{bucket}/{key}")


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_an_s3_input_is_answered_into_an_s3_output(world: tuple[Gateway, Any]) -> None:
    gw, s3 = world
    s3.put_object(Bucket="inputs", Key="batch/one.csv", Body=b"4,5,6\n")
    answer = gw.invoke(
        "echo", "s3://inputs/batch/one.csv", ContentType="text/csv", InferenceId="s3-one"
    )
    assert answer["OutputLocation"] == "s3://answers/out/s3-one.out"
    assert answer["FailureLocation"] == "s3://answers/failed/s3-one-error.out"
    assert wait_object(s3, "answers", "out/s3-one.out") == b"4,5,6\n"
    assert keys(s3, "answers", "failed/") == []


def test_a_50_mb_s3_input(world: tuple[Gateway, Any]) -> None:
    gw, s3 = world
    s3.put_object(Bucket="inputs", Key="big.bin", Body=b"\x02" * (50 * 1024 * 1024))
    answer = gw.invoke("headers", "s3://inputs/big.bin", S3OutputPathExtension="x/y")
    assert answer["OutputLocation"].startswith("s3://answers/headers/x/y/")
    key = answer["OutputLocation"].removeprefix("s3://answers/")
    seen = json.loads(wait_object(s3, "answers", key, timeout=120))
    assert seen["content-length"] == str(50 * 1024 * 1024)


def test_a_missing_s3_input_is_refused_and_a_failure_is_an_s3_object(
    world: tuple[Gateway, Any], tmp_path: Path
) -> None:
    gw, s3 = world
    with pytest.raises(ClientError) as caught:
        gw.invoke("echo", "s3://inputs/nothing-here.csv")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "no such object" in caught.value.response["Error"]["Message"]
    s3.put_object(Bucket="inputs", Key="two.csv", Body=b"1\n")
    failed = gw.invoke("broken", "s3://inputs/two.csv", InferenceId="s3-broken")
    assert failed["FailureLocation"] == "s3://answers/broken/s3-broken-error.out"
    document = json.loads(wait_object(s3, "answers", "broken/s3-broken-error.out"))
    assert document["InferenceId"] == "s3-broken"
    assert document["ErrorCode"] == "ModelError"
    assert keys(s3, "answers", "broken/") == ["broken/s3-broken-error.out"]
