"""``tandem loadtest --chart`` against a real gateway: the chart's series hold every request
sent, the instances serving were polled, and output to a pipe stays plain (no live frames)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.ops.loadtest import LoadSpec, run_load
from gateway.ops.loadwatch import LiveTable, timeline
from tests.gateway.ops.test_loadtest import invocations, url
from tests.support import PYTHON, ROOT

__all__ = ["url"]  # the module's gateway fixture, shared


def series(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="series">(.*?)</script>', page, re.S)
    assert found is not None, "no series in the chart"
    data: dict[str, Any] = json.loads(found.group(1).replace("<\\/", "</"))
    return data


def test_the_chart_holds_every_request_sent_and_the_instances(url: str, tmp_path: Path) -> None:
    chart, figures = tmp_path / "run.html", tmp_path / "run.json"
    args = ["--endpoint-url", url, "--endpoint", "load", "--users", "3", "--spawn-rate", "0"]
    args += ["--duration", "2.5", "--body", "x", "--target-container", "echo"]
    before = invocations(url)
    done = subprocess.run(
        [PYTHON, "-m", "gateway", "loadtest", *args, "--chart", str(chart), "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    sent = json.loads(figures.read_text())["requests"]
    assert sent > 0 and sent == invocations(url) - before
    page = chart.read_text()
    assert "<svg" in page and "instances serving" in page and "latency (ms)" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    data = series(page)
    assert sum(data["requests"]) == sent and sum(data["errors"]) == 0
    steps = len(data["start_s"])
    assert steps >= 3 and all(len(data[k]) == steps for k in ("rps", "p50_ms", "p99_ms"))
    assert data["instances"], "the instances serving were not polled"
    for counts in data["instances"].values():
        assert len(counts) == steps and counts[-1] == 1
    # A pipe gets the final table once: no live frames, no terminal escapes.
    assert "\x1b[" not in done.stdout
    assert done.stdout.count("tandem loadtest: load") == 1
    assert f"chart: {chart}" in done.stdout


def test_the_live_view_shows_each_variant_as_the_run_goes(url: str) -> None:
    view = LiveTable("live")
    seen: list[dict[str, int] | None] = []

    def watch(now: float, samples: list[Any], instances: dict[str, int] | None) -> None:
        view.update(now, samples, instances)
        seen.append(instances)

    spec = LoadSpec(url=url, endpoint="load", users=2, duration=1.5, target_container="echo")
    result = asyncio.run(run_load(spec, watch=watch, tick=0.3))
    assert len(seen) >= 3 and all(s is not None for s in seen)
    variants = {s.variant for s in result.samples}
    assert len(variants) == 1 and None not in variants
    console = Console(width=120, record=True, force_terminal=False)
    console.print(view)
    text = console.export_text()
    (variant,) = variants
    row = next(line for line in text.splitlines() if str(variant) in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[0] == variant and float(cells[1]) > 0 and cells[4] == "0" and cells[5] == "1"
    assert sum(timeline(result).requests) == result.requests
