"""``benchmarks/instances.py --quick`` runs to the end and prints every comparison it promises.

A smoke run is too short to judge the figures (docs/instances.md has a full run's); only that
the script exits 0 and prints each ratio.
"""

from __future__ import annotations

import subprocess

from tests.support import PYTHON, ROOT


def test_a_quick_run_prints_every_comparison() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "instances.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in (
        "copies per distinct loaded model:",
        "hit ratio affinity / one instance with 3x memory:",
        "p99 affinity / today's single instance:",
        "fast p99 least outstanding / round robin:",
        "3. The choice itself",
    ):
        assert line in result.stdout, result.stdout
