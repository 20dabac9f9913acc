"""``tandem invoke --async`` as a user runs it: the real CLI process against a real gateway.

The gateway (``tests/gateway/asynchronous/conftest.py``) serves contract-server endpoints whose
answers go to folders under the test's folder, and one whose answers go to the moto S3 server,
which ``--wait`` reads with the same ``AWS_ENDPOINT_URL`` the gateway has.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, toy, wait_for_file
from tests.gateway.s3server import moto_s3
from tests.support import PYTHON, ROOT

pytestmark = pytest.mark.slow


@dataclass
class Result:
    code: int
    out: bytes
    err: str


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("cli-async")
    specs = [
        spec("echo", str(folder / "out"), failure=str(folder / "failed")),
        spec(
            "broken",
            str(folder / "broken"),
            containers=[toy(CONTRACT_STATUS=500, CONTRACT_MESSAGE="no such column: churn")],
        ),
        spec("slow", str(folder / "slow"), containers=[toy(CONTRACT_SLEEP=120)]),
        spec("on-s3", "s3://answers/cli"),
        {"name": "realtime", "containers": [toy()]},
    ]
    with moto_s3(folder, "answers") as (s3, _), gateway(folder, specs, s3=s3) as running:
        yield running


def tandem(gw: Gateway, *args: str, s3: bool = False, stdin: bytes | None = None) -> Result:
    """``python -m gateway invoke ARGS --url GW``, with the gateway's S3 settings when ``s3``."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(gw.state.parent)}
    if s3:
        env.update(gw.env)
    done = subprocess.run(
        [PYTHON, "-m", "gateway", "invoke", *args, "--url", gw.url],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def test_async_prints_the_id_and_where_the_answer_will_be(gw: Gateway) -> None:
    folder = gw.state.parent
    run = tandem(gw, "echo", "--async", "--body", "1,2,3", "-c", "text/csv")
    assert run.code == 0, run.err
    accepted = json.loads(run.out)
    assert set(accepted) == {"InferenceId", "OutputLocation", "FailureLocation"}
    inference_id = accepted["InferenceId"]
    assert accepted["OutputLocation"] == str(folder / "out" / f"{inference_id}.out")
    assert accepted["FailureLocation"] == str(folder / "failed" / f"{inference_id}-error.out")
    assert f"InferenceId {inference_id}" in run.err
    # It did not wait, but the request was queued and is answered all the same.
    assert wait_for_file(Path(accepted["OutputLocation"])) == b"1,2,3"


def test_wait_prints_the_answer_of_an_input_location(gw: Gateway) -> None:
    folder = gw.state.parent
    (folder / "rows.csv").write_bytes(b"4,5,6\n7,8,9\n")
    run = tandem(gw, "echo", "--async", "--wait", "--input-location", str(folder / "rows.csv"))
    assert run.code == 0, run.err
    assert run.out == b"4,5,6\n7,8,9\n"
    assert "answered in" in run.err
    # The body from stdin, the answer to a file.
    target = folder / "answer.bin"
    run = tandem(gw, "echo", "--async", "--wait", "-b", "-", "-o", str(target), stdin=b"piped")
    assert (run.code, run.out) == (0, b"")
    assert target.read_bytes() == b"piped"


def test_a_failing_container_exits_1_with_the_reason(gw: Gateway) -> None:
    run = tandem(gw, "broken", "--async", "--wait", "--body", "1")
    assert run.code == 1
    assert run.out == b""
    assert "ModelError" in run.err
    assert "no such column: churn" in run.err
    assert "-error.out" in run.err  # where the failure object is


def test_wait_reads_an_s3_answer_with_the_gateways_endpoint(gw: Gateway) -> None:
    run = tandem(gw, "on-s3", "--async", "--wait", "--body", "from s3", s3=True)
    assert run.code == 0, run.err
    assert run.out == b"from s3"
    assert "s3://answers/cli/" in run.err


def test_wait_gives_up_after_its_timeout_saying_where_to_look(gw: Gateway) -> None:
    run = tandem(gw, "slow", "--async", "--wait", "--wait-timeout", "0.5", "--body", "x")
    assert run.code == 1
    assert "No answer within 0.5 s" in run.err
    assert str(gw.state.parent / "slow") in run.err


def test_the_gateways_refusals_are_printed_with_their_code(gw: Gateway) -> None:
    run = tandem(gw, "realtime", "--async", "--body", "x")
    assert run.code == 1
    assert "ValidationError (400)" in run.err
    assert "not configured for asynchronous inference" in run.err
    run = tandem(gw, "echo", "--async", "--input-location", "/etc/passwd")
    assert run.code == 1
    assert "ValidationError (400)" in run.err
    big = "x" * 128_001
    run = tandem(gw, "echo", "--async", "--body", big)
    assert run.code == 1
    assert "128000" in run.err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--async"], "--body"),  # no input at all
        (["--async", "-b", "x", "--input-location", "/tmp/x"], "--input-location"),
        (["--async", "-b", "x", "-t", "one"], "--target-container"),
        (["--async", "-b", "x", "-o", "answer.bin"], "--output"),
        (["-b", "x", "--wait"], "--wait"),
        (["--input-location", "/tmp/x"], "--input-location"),
    ],
)
def test_options_that_do_not_fit_are_refused_before_sending(
    gw: Gateway, args: list[str], named: str
) -> None:
    run = tandem(gw, "echo", *args)
    assert run.code == 2
    assert named in run.err
