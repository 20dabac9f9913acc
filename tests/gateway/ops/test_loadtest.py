"""``tandem loadtest`` against a real gateway: counts match the gateway's own metrics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.ops.loadtest import LoadSpec, MetricsSnapshot, percentile, run_load
from gateway.settings import GatewaySettings
from tests.gateway.harness import contract_servers, endpoint, serve
from tests.support import PYTHON, ROOT


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with contract_servers({"echo": {}}) as urls:
        runtime = endpoint(
            urls,
            name="load",
            execution="Direct",
            containers=[{"hostname": "echo", "command": ["echo"]}],
        )
        settings = GatewaySettings(state_dir=tmp_path_factory.mktemp("state"))
        with serve(create_app([runtime], settings)) as served:
            yield served


def invocations(url: str) -> float:
    return MetricsSnapshot(httpx.get(f"{url}/metrics").text).value(
        "tandem_invocations_total", endpoint="load"
    )


def test_the_cli_prints_the_table_and_counts_every_request(url: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"instances": [[1, 2, 3]]}')
    out = tmp_path / "result.json"
    args = ["--endpoint-url", url, "--endpoint", "load", "--users", "3", "--spawn-rate", "30"]
    args += ["--duration", "1.5", "--body", f"@{body}", "--target-container", "echo"]
    before = invocations(url)
    result = subprocess.run(
        [PYTHON, "-m", "gateway", "loadtest", *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    for column in ("req/s", "p50 ms", "p99 ms", "ModelLatency ms", "OverheadLatency ms"):
        assert column in result.stdout
    figures = json.loads(out.read_text())
    assert figures["requests"] > 0 and figures["failures"] == 0
    assert figures["requests"] == invocations(url) - before  # the gateway saw exactly these
    assert figures["model_latency_ms"] is not None and figures["overhead_latency_ms"] is not None
    assert figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_a_fixed_rate_sends_exactly_rate_times_duration(url: str) -> None:
    spec = LoadSpec(
        url=url,
        endpoint="load",
        users=4,
        spawn_rate=0,
        duration=1.0,
        body=b"x",
        target_container="echo",
        rate=25.0,
    )
    result = asyncio.run(run_load(spec))
    assert result.requests == 25
    assert result.failures == 0
    assert sum(w["requests"] for w in result.windows(0.5)) == 25


def test_errors_are_counted_by_status_and_code(url: str) -> None:
    spec = LoadSpec(url=url, endpoint="load", users=2, duration=0.5, target_container="nope")
    result = asyncio.run(run_load(spec))
    assert result.requests > 0
    assert result.errors() == {"400 ValidationError": result.requests}
    assert result.model_latency is None  # no successful request to average


def test_nothing_listening_is_counted_not_raised() -> None:
    spec = LoadSpec(url="http://127.0.0.1:9", endpoint="load", users=1, duration=0.3, timeout=2)
    result = asyncio.run(run_load(spec))
    assert result.requests > 0 and result.failures == result.requests
    assert all(key.startswith("0 ") for key in result.errors())


def test_a_missing_body_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "gateway", "loadtest", "--endpoint", "x", "--body", f"@{tmp_path}/none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--body: cannot read" in result.stderr


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0
