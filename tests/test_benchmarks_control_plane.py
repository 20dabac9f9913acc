"""``benchmarks/control_plane.py --quick`` runs to the end: its processes start, talk and stop.

The figures are for docs/performance.md; a smoke run is far too short to judge them, so nothing
here is timed: only that the script exits 0, prints its three sections and lost no request.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

SECTIONS = (
    "1. UpdateEndpoint under load",
    "2. CreateEndpoint to InService",
    "3. The hot path with and without the control plane",
)


def test_a_quick_run_prints_the_three_sections() -> None:
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "control_plane.py"), "--quick", "--rate", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for section in SECTIONS:
        assert section in result.stdout, result.stdout
    assert re.search(r"failed 0 \(goal 0\)", result.stdout), result.stdout
    assert "with / without:" in result.stdout
