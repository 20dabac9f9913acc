"""``benchmarks/async_inference.py --quick`` runs to the end: both paths answer every request.

A smoke run is far too short to judge the figures (docs/performance.md has a full run's); only
that the script exits 0 (it exits 1 if an asynchronous answer is missing or a failure object was
written), prints both paths and the ratio, and wrote every answer it waited for.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def test_a_quick_run_prints_both_paths_and_the_ratio() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "async_inference.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("real-time", "async"):
        assert re.search(rf"^{row}( +[\d.]+){{5}}$", result.stdout, re.M), result.stdout
    assert re.search(r"async / real-time: req/s ratio \d\.\d{3}", result.stdout), result.stdout
    # 16 warm-up, 40 under load and 5 one at a time: every one answered, none failed.
    assert "answers written: 61; failures: 0" in result.stdout, result.stdout
