"""``benchmarks/metric_store.py`` runs to the end and prints its comparison (figures not judged)."""

from __future__ import annotations

import re
import subprocess

from tests.support import PYTHON, ROOT


def test_a_short_run_prints_the_ratio_and_the_rollup() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "metric_store.py"), "--calls", "2000", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"ratio\s+\d+\.\d\dx the no-op", result.stdout), result.stdout
    assert re.search(r"rollup \(flusher\)\s+\d+ ns per request", result.stdout), result.stdout
