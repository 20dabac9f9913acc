"""A gateway app with the usage route, served by a real uvicorn, read by the real CLI.

No invocation path feeds the recorder yet (the data-plane core wires it), so the tests feed the
metric service's recorder in-process, exactly as the core will, on a clock they move by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app as cli
from gateway.cloudwatch import MetricApi, MetricService, cloudwatch_routes
from gateway.edge.app import create_app
from gateway.live import EndpointTable
from gateway.usage import UsageService, usage_route
from tests.gateway.harness import serve
from tests.gateway.processes import quick_settings


class Clock:
    """Real time at the start (the middle of an hour), moved only by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 3600 * 3600 + 1800)

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    url: str
    clock: Clock
    state: Path
    metrics: MetricService
    usage: UsageService

    @property
    def recorder(self) -> Any:
        return self.metrics.recorder

    def cli(self, *args: str) -> Any:
        """``tandem usage ARGS --url`` as a user runs it (a 2-hour window around now)."""
        when = ["--since", repr(self.clock.now - 7200), "--until", repr(self.clock.now + 1)]
        return CliRunner().invoke(cli, ["usage", *when, *args, "--url", self.url])

    def groups(self, *args: str) -> list[dict[str, Any]]:
        result = self.cli(*args, "--format", "json")
        assert result.exit_code == 0, result.output
        found: list[dict[str, Any]] = json.loads(result.stdout)
        return found


def services(state: Path, clock: Clock, **settings: Any) -> tuple[MetricService, UsageService]:
    values = quick_settings(state, **settings)
    metrics = MetricService.from_settings(values, clock=clock)
    return metrics, UsageService.from_settings(values, metrics, clock=clock)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    state = tmp_path / "state"
    metrics, usage = services(state, clock, usage_prices="*=0.5")
    routes = [*cloudwatch_routes(MetricApi(metrics)), usage_route(usage)]
    app = create_app(EndpointTable(), quick_settings(state), routes=routes)
    try:
        with serve(app) as url:
            yield World(url, clock, state, metrics, usage)
    finally:
        usage.close()
        metrics.store.close()
