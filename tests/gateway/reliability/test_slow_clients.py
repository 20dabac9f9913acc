"""Slowloris and slow POST: fast requests still complete, slow ones are cut with 408."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import slow_clients

pytestmark = pytest.mark.slow


def test_slow_clients_do_not_starve_fast_ones_and_are_cut_off(tmp_path: Path) -> None:
    result = slow_clients.run(
        7.0,
        slow=25,
        dribble=0.5,
        header_timeout=2.5,
        body_timeout=2.5,
        baseline=1.0,
        workdir=tmp_path,
    )
    assert result["fast_requests"] > 0
    assert result["fast_failures"] == 0, result["fast_errors"]
    # Each of the 25 + 25 dribbling connections outlived its deadline at least once.
    assert result["slow_headers_408"] >= 25
    assert result["slow_body_408"] >= 25
    assert result["slow_other_answers"] == []
    assert result["max_slow_lifetime_s"] <= 2.5 + slow_clients.SLACK_S
    assert result["restarts"] == {"model": 0}
