"""``tandem invoke`` against a served gateway: body sources, output, timings, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.cli.invoke import invoke, parse_server_timing
from gateway.edge.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import contract_servers, endpoint, serve
from tests.support import free_port

cli = typer.Typer()
cli.command("invoke")(invoke)
cli.command("unused")(lambda: None)  # two commands, so `invoke` is a subcommand as in `tandem`


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    configs = {
        "pre": {"CONTRACT_MODE": "upper", "CONTRACT_CONTENT_TYPE": "text/x-pre"},
        "post": {"CONTRACT_MARKER": "!"},
        "bad": {"CONTRACT_STATUS": "400", "CONTRACT_MESSAGE": "[bold]no[/bold] such column"},
        "headers": {"CONTRACT_MODE": "headers"},
    }
    with contract_servers(configs) as urls:
        endpoints = [
            endpoint(urls, name="chain", containers=[
                {"hostname": "pre", "command": ["pre"]},
                {"hostname": "post", "command": ["post"]},
            ]),
            endpoint(urls, name="pick", execution="Direct", containers=[
                {"hostname": "post", "command": ["post"]},
                {"hostname": "bad", "command": ["bad"]},
                {"hostname": "inspect", "command": ["headers"]},
            ]),
        ]  # fmt: skip
        with serve(create_app(endpoints, GatewaySettings())) as url:
            yield url


def run(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, ["invoke", *args], input=stdin)
    return result.exit_code, result.stdout_bytes, result.stderr


def test_literal_body_prints_answer_and_step_times(gateway: str) -> None:
    code, out, err = run("chain", "--url", gateway, "--body", "abc", "-c", "text/plain")
    assert code == 0, err
    assert out == b"ABC!"
    assert "text/x-pre" in err  # the last step answered with what the first one sent it
    for step in ("pre", "post", "overhead", "total"):
        assert step in err


def test_body_from_file_and_stdin(gateway: str, tmp_path: Path) -> None:
    payload = tmp_path / "rows.csv"
    payload.write_bytes(b"1,2\n3,4\n")
    code, out, _ = run("chain", "--url", gateway, "--body", f"@{payload}")
    assert (code, out) == (0, b"1,2\n3,4\n!")
    code, out, _ = run("chain", "--url", gateway, "--body", "-", stdin=b"from stdin")
    assert (code, out) == (0, b"FROM STDIN!")


def test_output_file_and_target_container(gateway: str, tmp_path: Path) -> None:
    target = tmp_path / "answer.bin"
    code, out, err = run("pick", "--url", gateway, "-t", "post", "-b", "x", "-o", str(target))
    assert code == 0, err
    assert out == b""
    assert target.read_bytes() == b"x!"


def test_accept_and_content_type_reach_the_container(gateway: str) -> None:
    args = ("pick", "--url", gateway, "-t", "inspect", "-b", "x", "-c", "text/csv")
    code, out, err = run(*args, "--accept", "application/json")
    assert code == 0, err
    received = json.loads(out)
    assert (received["accept"], received["content-type"]) == ("application/json", "text/csv")
    code, out, err = run(*args, "-a", "text/plain")
    assert code == 0, err
    assert json.loads(out)["accept"] == "text/plain"
    code, out, err = run(*args)
    assert code == 0, err
    assert "accept" not in json.loads(out)  # none sent, as boto3: the container's default applies


def test_target_model_is_sent(gateway: str) -> None:
    code, _, err = run("pick", "--url", gateway, "-t", "post", "-m", "a.tar.gz", "-b", "x")
    assert code == 1
    assert "ValidationError (400)" in err
    assert "not a multi-model endpoint" in err  # the gateway saw the header


def test_model_error_exits_1_with_message(gateway: str) -> None:
    code, out, err = run("pick", "--url", gateway, "--target-container", "bad", "-b", "x")
    assert code == 1
    assert out == b""
    assert "ModelError (424)" in err
    assert "[bold]no[/bold] such column" in err  # printed as text, not as markup
    assert "original status: 400" in err


def test_validation_error_and_missing_file(gateway: str, tmp_path: Path) -> None:
    code, _, err = run("pick", "--url", gateway, "-b", "x")
    assert code == 1
    assert "ValidationError (400)" in err
    code, _, err = run("chain", "--url", gateway, "--body", f"@{tmp_path / 'nope.csv'}")
    assert code == 2
    assert "cannot read" in err


def test_unreachable_gateway_exits_2() -> None:
    code, _, err = run("chain", "--url", f"http://127.0.0.1:{free_port()}", "-b", "x")
    assert code == 2
    assert "Cannot reach the gateway" in err


def test_parse_server_timing() -> None:
    header = 'pre;dur=1.5, post;desc="x";dur=0.25, bad;dur=oops, overhead;dur=0.1'
    assert parse_server_timing(header) == [("pre", 1.5), ("post", 0.25), ("overhead", 0.1)]
    assert parse_server_timing(None) == []
