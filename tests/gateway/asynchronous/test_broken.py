"""A container that breaks off a request, by crashing or by answering something that is not HTTP,
ends that request in one failure object after MAX_BREAKS tries, instead of looping until its
TTL; the queue goes on. A real gateway and a real container process (``broken_container.py``),
which the supervisor restarts after each crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.asynchronous.worker import MAX_BREAKS
from tests.gateway.asynchronous.conftest import Gateway, files, gateway, spec, wait_for_file
from tests.support import PYTHON

pytestmark = pytest.mark.slow

BROKEN = str(Path(__file__).with_name("broken_container.py"))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("broken")
    container = {"command": [PYTHON, BROKEN], "environment": {"BROKEN_LOG": str(folder / "calls")}}
    specs = [spec("flaky", str(folder / "out"), containers=[container])]
    with gateway(folder, specs) as running_gateway:
        yield running_gateway


def calls(gw: Gateway, first_line: bytes) -> int:
    log = gw.state.parent / "calls"
    return log.read_bytes().splitlines().count(first_line) if log.exists() else 0


def ends_in_one_failure(gw: Gateway, body: bytes, inference_id: str) -> dict[str, str]:
    answer = gw.runtime.invoke_endpoint_async(
        EndpointName="flaky", Body=body, ContentType="text/plain", InferenceId=inference_id
    )
    document: dict[str, str] = json.loads(
        wait_for_file(Path(answer["FailureLocation"]), timeout=120)
    )
    assert not Path(answer["OutputLocation"]).exists()
    assert document["InferenceId"] == inference_id
    (row,) = gw.settled(inference_id)
    assert row[2] == "Failed"
    return document


def test_a_request_answered_with_garbage_fails_after_a_few_tries(gw: Gateway) -> None:
    document = ends_in_one_failure(gw, b"garbage please", "garbage-1")
    assert document["ErrorCode"] == "ModelError"
    assert f"broke off the request {MAX_BREAKS} times" in document["Message"]
    assert "malformed answer" in document["Message"]
    assert calls(gw, b"garbage please") == MAX_BREAKS


def test_a_request_that_crashes_its_container_fails_and_the_queue_goes_on(gw: Gateway) -> None:
    document = ends_in_one_failure(gw, b"crash now", "crash-1")
    assert document["ErrorCode"] == "ModelError"
    assert f"broke off the request {MAX_BREAKS} times" in document["Message"]
    assert "Traceback" not in document["Message"]
    assert calls(gw, b"crash now") == MAX_BREAKS
    # The restarted container answers the next request; nothing is left running.
    answer = gw.runtime.invoke_endpoint_async(
        EndpointName="flaky", Body=b"fine", ContentType="text/plain", InferenceId="after"
    )
    assert wait_for_file(Path(answer["OutputLocation"]), timeout=60) == b"fine"
    statuses = {r[1]: r[2] for r in gw.settled()}  # every row finished, none left running
    assert statuses["crash-1"] == "Failed" and statuses["after"] == "Completed"
    written = files(gw.state.parent / "out")
    assert {"after.out", "crash-1-error.out"} <= set(written)
    assert not [name for name in written if name.endswith(".partial")]
