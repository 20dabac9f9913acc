"""``benchmarks/guardrails.py`` runs to the end with short bakes: four updates, none failing a
request, the rollback within its goal (the figures of a full run are in docs/guardrails.md)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def test_a_short_run_prints_every_update() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "guardrails.py"), "--wait", "1", "--threads", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for name, config in (("canary", "v2"), ("linear", "v2"), ("rollback", "v1"), ("rolling", "v2")):
        line = next(row for row in out.splitlines() if row.startswith(name))
        assert "failed 0 (goal 0)" in line and f"ended on {config}-{name}" in line, line
    assert "goal <= 11 s: met" in out
