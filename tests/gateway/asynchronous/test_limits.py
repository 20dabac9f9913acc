"""An asynchronous request's own limits: answers up to TANDEM_ASYNC_MAX_BYTES (not the real-time
6 MiB), InvocationTimeoutSeconds (not the endpoint's real-time ``timeout``), RequestTTLSeconds.

A real gateway and contract-server containers: ``CONTRACT_SLEEP`` makes one slow,
``CONTRACT_REPEAT`` makes one answer more than it was sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from gateway.state import FILENAME
from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, toy, wait_for_file
from tests.support import wait_until

pytestmark = pytest.mark.slow

REALTIME_LIMIT = 6 * 1024 * 1024
ASYNC_LIMIT = 25_000_000
BIG = 10_000_000


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("limits")
    specs = [
        spec("echo", str(folder / "echo")),
        spec("thrice", str(folder / "thrice"), containers=[toy(CONTRACT_REPEAT=3)]),
        # A Serial chain whose first step triples its input for the second.
        spec("chain", str(folder / "chain"), containers=[toy(CONTRACT_REPEAT=3), toy()]),
        # Real-time calls give up after 1 s; this container takes 2.
        spec("slow", str(folder / "slow"), containers=[toy(CONTRACT_SLEEP=2)], timeout=1),
        spec(
            "single",
            str(folder / "single"),
            containers=[toy(CONTRACT_SLEEP=3)],
            async_fields={"max_concurrent_invocations_per_instance": 1},
        ),
    ]
    env = {"TANDEM_ASYNC_MAX_BYTES": str(ASYNC_LIMIT)}
    with gateway(folder, specs, env=env) as running_gateway:
        yield running_gateway


def failure(path: str) -> dict[str, str]:
    document: dict[str, str] = json.loads(wait_for_file(Path(path), timeout=90))
    return document


def test_an_answer_over_the_real_time_limit_lands_whole(gw: Gateway) -> None:
    folder = gw.state.parent
    data = bytes(range(256)) * (BIG // 256) + b"end"
    assert len(data) > REALTIME_LIMIT
    (folder / "big.bin").write_bytes(data)
    answer = gw.invoke("echo", str(folder / "big.bin"), ContentType="application/octet-stream")
    assert wait_for_file(Path(answer["OutputLocation"]), timeout=90) == data
    assert not Path(answer["FailureLocation"]).exists()


def test_an_answer_over_the_async_limit_fails_naming_it(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "third.bin").write_bytes(b"x" * BIG)  # under the limit; the answer is 3x
    answer = gw.invoke("thrice", str(folder / "third.bin"))
    document = failure(answer["FailureLocation"])
    assert document["ErrorCode"] == "ValidationError"
    assert f"larger than {ASYNC_LIMIT} bytes" in document["Message"]
    assert not Path(answer["OutputLocation"]).exists()


def test_a_serial_chain_s_payload_between_steps_has_the_async_limit(gw: Gateway) -> None:
    folder = gw.state.parent
    data = b"abc" * 1_000_000  # 3 MB in, 9 MB from step 1 to step 2: over 6 MiB, under 25 MB
    (folder / "chain.bin").write_bytes(data)
    # InvokeEndpoint takes the body, but not what step 1 sends on ...
    with pytest.raises(ClientError) as caught:
        gw.runtime.invoke_endpoint(EndpointName="chain", Body=data)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert f"larger than {REALTIME_LIMIT} bytes" in caught.value.response["Error"]["Message"]
    assert "the payload to the next step" in caught.value.response["Error"]["Message"]
    # ... which an asynchronous call's limit allows, at every step.
    answer = gw.invoke("chain", str(folder / "chain.bin"), ContentType="application/octet-stream")
    assert wait_for_file(Path(answer["OutputLocation"]), timeout=90) == data * 3
    assert not Path(answer["FailureLocation"]).exists()


def test_a_call_slower_than_the_real_time_timeout_succeeds_within_its_own(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "slow.csv").write_text("1,2\n")
    # The endpoint's real-time timeout is in force for InvokeEndpoint ...
    with pytest.raises(ClientError) as caught:
        gw.runtime.invoke_endpoint(EndpointName="slow", Body=b"1,2\n", ContentType="text/csv")
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "timed out" in caught.value.response["Error"]["Message"]
    # ... but an asynchronous call has InvocationTimeoutSeconds (900 by default, 30 here).
    answer = gw.invoke("slow", str(folder / "slow.csv"), InvocationTimeoutSeconds=30)
    assert wait_for_file(Path(answer["OutputLocation"])) == b"1,2\n"
    default = gw.invoke("slow", str(folder / "slow.csv"))
    assert wait_for_file(Path(default["OutputLocation"])) == b"1,2\n"


def test_a_call_slower_than_its_invocation_timeout_fails_saying_so(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "late.csv").write_text("1\n")
    answer = gw.invoke("slow", str(folder / "late.csv"), InvocationTimeoutSeconds=1)
    document = failure(answer["FailureLocation"])
    assert document["ErrorCode"] == "ModelError"
    assert "timed out" in document["Message"]
    assert "InvocationTimeoutSeconds: 1 s" in document["Message"]
    assert not Path(answer["OutputLocation"]).exists()


def test_a_request_past_its_ttl_while_the_endpoint_is_busy_fails_expired(gw: Gateway) -> None:
    """RequestTTLSeconds is at least 60 s, so instead of waiting a minute the test moves the
    queued request's deadline into the past in the state database, as a clock moving would."""
    folder = gw.state.parent
    (folder / "ttl.csv").write_text("1\n")
    first = gw.invoke("single", str(folder / "ttl.csv"), InferenceId="ttl-first")
    wait_until(
        lambda: [r for r in gw.rows() if r[1] == "ttl-first" and r[2] == "Running"],
        timeout=30,
        what="the first request to run",
    )
    # The workers claim one round ahead (a request of this endpoint, held for its next free
    # slot): the request after that one is the one left waiting in the queue.
    ahead = gw.invoke("single", str(folder / "ttl.csv"), InferenceId="ttl-ahead")
    late = gw.invoke(
        "single", str(folder / "ttl.csv"), InferenceId="ttl-late", RequestTTLSeconds=60
    )
    conn = sqlite3.connect(gw.state / FILENAME, timeout=30)
    try:
        with conn:
            moved = conn.execute(
                "UPDATE async_invocations SET expires = created WHERE inference_id = ? "
                "AND status = 'Queued'",
                ("ttl-late",),
            ).rowcount
    finally:
        conn.close()
    assert moved == 1, "the second request should still wait behind the first"
    document = failure(late["FailureLocation"])
    assert document["ErrorCode"] == "RequestExpired"
    assert "RequestTTLSeconds" in document["Message"]
    assert wait_for_file(Path(first["OutputLocation"])) == b"1\n"
    assert wait_for_file(Path(ahead["OutputLocation"])) == b"1\n"
    assert not Path(late["OutputLocation"]).exists()
    (row,) = gw.settled("ttl-late")
    assert row[2] == "Failed"
