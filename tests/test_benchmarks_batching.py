"""``benchmarks/batching.py --quick`` runs to the end: its containers and gateway start and answer.

A smoke run is far too short to judge the figures, so nothing here is timed: only that the script
exits 0, that batched and unbatched answers agreed (it asserts so itself) and that it printed its
table and goals.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def test_a_quick_run_prints_its_goals() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "batching.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("sklearn, unbatched", "sklearn, batched", "sklearn: c=32 req/s >= 1.3x"):
        assert line in result.stdout, result.stdout
