"""SIGKILL a container under load: 503 fast, then recovery; its neighbour never notices."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import kill

pytestmark = pytest.mark.slow


def test_a_killed_container_fails_fast_with_503_and_recovers(tmp_path: Path) -> None:
    # Kills at 3 s and 6 s; the restart backoff (0.5 s, then 1 s) keeps the victim down for at
    # least 7 of the 15 requests a second each time, so every kill must show as 503s.
    result = kill.run(9.0, interval=3.0, rate=15.0, workdir=tmp_path)
    assert result["kills"] == 2
    assert result["victim_failure_statuses"] == [503], result["victim_errors"]
    assert result["victim_failures"] >= 2 * 7, result["victim_failures"]
    assert set(result["victim_errors"]) <= {"503 ServiceUnavailable"}
    assert result["victim_unanswered"] == 0  # nothing hung until the client gave up
    assert all(r is not None for r in result["recovery_s"]), result["recovery_s"]
    assert result["victim_ok"] > 0
    assert result["bystander_failures"] == 0
    assert result["restarts"] == {"victim": 2, "bystander": 0}
    assert result["healthy_at_end"]
    # Fail fast: generous, so a loaded machine does not flake, yet far below the 10 s timeout.
    assert result["victim_slowest_failure_ms"] < kill.FAST_S * 1000
