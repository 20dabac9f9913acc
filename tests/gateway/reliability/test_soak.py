"""A bounded soak: a steady rate against a real ``tandem serve``, counted, never timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import soak

pytestmark = pytest.mark.slow


def test_a_short_soak_has_no_errors_and_no_restarts(tmp_path: Path) -> None:
    result = soak.run(6.0, rate=30.0, users=8, warmup=2.0, window=2.0, workdir=tmp_path)
    assert result["requests"] >= 30 * 6 * 0.9  # the open model sent what it scheduled
    assert result["failures"] == 0, result["errors"]
    assert result["warmup_failures"] == 0
    assert result["restarts"] == {"model": 0}
    assert result["model_latency_ms"] is not None and result["overhead_latency_ms"] is not None
    assert len(result["windows"]) == 3
    # Memory growth is a figure for docs/reliability.md; a 6 s run is too short to judge it.
    assert result["rss_start_mib"] > 0
