"""``benchmarks/usage.py --quick`` runs to the end and prints its figures (not judged but one:
the ledger's invocations equal what was sent, which is a count, not a time)."""

from __future__ import annotations

import re
import subprocess

from tests.support import PYTHON, ROOT


def test_a_quick_run_prints_every_figure() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "usage.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"invocations exact\s+yes", result.stdout), result.stdout
    figure = r"c=16 req/s with/without\s+\d+\.\d{3} the figure"
    assert re.search(figure, result.stdout), result.stdout
    assert re.search(r"prometheus series\s+10 with 10 models, 51 with 1,000", result.stdout)
