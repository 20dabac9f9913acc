"""boto3's ``invoke_endpoint_async`` against a real gateway, inputs and answers in folders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.asynchronous.conftest import (
    Gateway,
    files,
    gateway,
    spec,
    toy,
    wait_for_file,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("async")
    specs = [
        spec("echo", str(folder / "out"), failure=str(folder / "failed")),
        spec(
            "headers",
            "answers",  # relative: to the spec's folder
            containers=[toy(CONTRACT_MODE="headers")],
            async_fields={"max_concurrent_invocations_per_instance": 2},
        ),
        spec("broken", str(folder / "broken"), containers=[toy(CONTRACT_STATUS=500)]),
        spec("garbage", str(folder / "garbage"), containers=[toy(CONTRACT_MODE="sum")]),
        {"name": "realtime", "containers": [toy()]},
    ]
    with gateway(folder, specs) as running_gateway:
        yield running_gateway


def test_an_answer_lands_at_the_output_location_sagemaker_names(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "in.csv").write_text("1,2,3\n")
    answer = gw.invoke(
        "echo",
        str(folder / "in.csv"),
        ContentType="text/csv",
        InferenceId="first-request",
        CustomAttributes="trace=1",
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["InferenceId"] == "first-request"
    assert answer["OutputLocation"] == str(folder / "out" / "first-request.out")
    assert answer["FailureLocation"] == str(folder / "failed" / "first-request-error.out")
    assert wait_for_file(Path(answer["OutputLocation"])) == b"1,2,3\n"
    assert "first-request.out" in files(folder / "out")
    assert not Path(answer["FailureLocation"]).exists()


def test_a_generated_id_an_extension_and_a_filename(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "x.json").write_text('{"a": 1}')
    generated = gw.invoke("echo", f"file://{folder / 'x.json'}")
    assert len(generated["InferenceId"]) == 36  # a uuid
    assert generated["OutputLocation"].endswith(f"{generated['InferenceId']}.out")
    named = gw.invoke(
        "echo", str(folder / "x.json"), S3OutputPathExtension="daily/run-1", Filename="result.json"
    )
    assert named["OutputLocation"] == str(folder / "out" / "daily" / "run-1" / "result.json")
    assert wait_for_file(Path(named["OutputLocation"])) == b'{"a": 1}'
    assert wait_for_file(Path(generated["OutputLocation"])) == b'{"a": 1}'


def test_the_headers_reach_the_container_and_relative_outputs_resolve(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "h.txt").write_text("hello")
    answer = gw.invoke(
        "headers",
        str(folder / "h.txt"),
        ContentType="text/plain",
        Accept="application/json",
        CustomAttributes="c=2",
        InferenceId="h1",
    )
    assert answer["OutputLocation"] == str(folder / "answers" / "h1.out")
    seen = json.loads(wait_for_file(Path(answer["OutputLocation"])))
    assert seen["content-type"] == "text/plain"
    assert seen["accept"] == "application/json"
    assert seen["x-amzn-sagemaker-custom-attributes"] == "c=2"
    assert seen["x-amzn-sagemaker-inference-id"] == "h1"
    assert seen["content-length"] == "5"


def test_a_50_mb_input_goes_through_whole(gw: Gateway) -> None:
    folder = gw.state.parent
    big = folder / "big.bin"
    big.write_bytes(b"\x01" * (50 * 1024 * 1024))
    answer = gw.invoke("headers", str(big), ContentType="application/octet-stream")
    seen = json.loads(wait_for_file(Path(answer["OutputLocation"]), timeout=120))
    assert seen["content-length"] == str(50 * 1024 * 1024)


def test_a_failing_container_writes_a_failure_and_the_queue_goes_on(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "f.csv").write_text("1\n")
    failed = gw.invoke("broken", str(folder / "f.csv"), InferenceId="f1")
    # No failure_path: failures go beside the answers, named -error.out.
    assert failed["FailureLocation"] == str(folder / "broken" / "f1-error.out")
    document = json.loads(wait_for_file(Path(failed["FailureLocation"])))
    assert document["ErrorCode"] == "ModelError"
    assert "500" in document["Message"]
    assert document["InferenceId"] == "f1"
    assert not Path(failed["OutputLocation"]).exists()
    # Garbage for the model (a 400 from it) fails that request alone; the next one answers.
    (folder / "bad.csv").write_text("not,a,number\n")
    (folder / "good.csv").write_text("1,2\n")
    bad = gw.invoke("garbage", str(folder / "bad.csv"), ContentType="text/csv")
    good = gw.invoke("garbage", str(folder / "good.csv"), ContentType="text/csv", Accept="text/csv")
    assert b"3" in wait_for_file(Path(good["OutputLocation"]))
    assert json.loads(wait_for_file(Path(bad["FailureLocation"])))["ErrorCode"] == "ModelError"
    assert {row[2] for row in gw.settled()} <= {"Completed", "Failed"}
