"""``benchmarks/variants.py --quick`` runs to the end: five endpoints start, take load and stop.

A smoke run is far too short to judge the figures (docs/performance.md has a full run's); only
that the script exits 0, prints every comparison and that capture wrote records.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def test_a_quick_run_prints_every_comparison() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "variants.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("two variants / one, c=16:", "same processes", "capture 100% vs none, c=16:",
                 "shadow 100% vs none, c=16:"):  # fmt: skip
        assert line in result.stdout, result.stdout
    records = re.search(r"capture files written: (\d+), records: (\d+)", result.stdout)
    assert records is not None and int(records.group(2)) > 0, result.stdout
