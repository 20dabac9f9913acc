"""Per-instance visibility on a real ``tandem serve``: what ``GET /endpoints/{name}`` says of each
instance, what ``DescribeEndpoint`` counts, and what ``tandem endpoints describe`` prints of it.

A request held open by the contract server's gate keeps one instance busy for as long as the test
wants, so the in-flight counts read are exact, not a race.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.lifecycle.conftest import clients, wait_status
from tests.gateway.lifecycle.test_routing_live import hold_one, two_instances
from tests.gateway.lifecycle.test_variants import gateway as gateway  # the fixture
from tests.support import PYTHON, ROOT

pytestmark = pytest.mark.slow


def describe_cli(url: str, name: str, columns: int = 220) -> str:
    """``tandem endpoints describe`` as a user runs it, ``columns`` wide."""
    result = subprocess.run(
        [PYTHON, "-m", "gateway", "endpoints", "describe", name, "--url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def instance_rows(output: str) -> dict[str, list[str]]:
    """The instances table's rows by instance name: their cells, split on the table's bars."""
    rows: dict[str, list[str]] = {}
    for line in output.split("instances (now)", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and cells[0] == "AllTraffic":
            rows[cells[1]] = cells
    return rows


def test_each_instance_shows_its_requests_in_flight(gateway: str, tmp_path: Path) -> None:
    control, runtime = clients(gateway)
    gate = tmp_path / "gate"
    two_instances(control, "busy", gate)
    wait_status(control, "busy", "InService")
    (variant,) = control.describe_endpoint(EndpointName="busy")["ProductionVariants"]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 2

    thread, answers, busy = hold_one(runtime, gateway, "busy")
    try:
        (live,) = httpx.get(f"{gateway}/endpoints/busy").json()["ProductionVariants"]
        details: list[dict[str, Any]] = live["InstanceDetails"]
        assert [d["InFlight"] for d in details] == [1 if i == busy else 0 for i in range(2)]
        assert all(d["Healthy"] and d["LoadedModels"] == {} for d in details)
        assert live["CurrentInstanceCount"] == 2
        names = [d["InstanceName"] for d in details]
        assert len(set(names)) == 2

        rows = instance_rows(describe_cli(gateway, "busy"))
        assert sorted(rows) == sorted(names)
        for i, name in enumerate(names):
            _, _, state, in_flight, loaded = rows[name]
            assert (state, in_flight, loaded) == ("running", "1" if i == busy else "0", "-")
    finally:
        gate.touch()
        thread.join(timeout=30)
    assert answers == [b"gate|x"]
    rows = instance_rows(describe_cli(gateway, "busy"))
    assert [cells[3] for cells in rows.values()] == ["0", "0"]
