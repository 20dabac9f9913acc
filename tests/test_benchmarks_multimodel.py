"""``benchmarks/multimodel.py`` at a small size runs to the end and prints both policies.

A smoke run is far too short to judge the Zipf figures (docs/performance.md has a full run's);
what it checks is that both policies ran the same stream and that the scan case, which counts
loads rather than timing them, loaded each hot model once under ``value``.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import PYTHON, ROOT

pytest.importorskip("sklearn")

pytestmark = [pytest.mark.sklearn, pytest.mark.slow]

HOT = 4


def test_a_small_run_prints_both_policies_and_the_scan_case() -> None:
    args = "--small 90 --large 4 --large-mb 2 --warm-requests 50 --zipf-requests 200"
    args += f" --workers 1 --tf-models 0 --scan-hot {HOT} --scan-once 80"
    result = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "multimodel.py"), *args.split()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    rows = re.findall(r"^  (lru|value) +hit ratio ([\d.]+) +loads +(\d+)", out, re.M)
    assert [policy for policy, _, _ in rows] == ["lru", "value"] * 2, out
    assert "== value against lru (same stream, same memory, same run)" in out, out
    # Each row is followed by where a miss's time went and the CPU per request.
    assert len(re.findall(r"^ +mean ms: fetch\+unpack .* CPU ms per request", out, re.M)) == 4, out
    hot = dict(re.findall(r"^  (lru|value) .*\n.*\n +hot set loads (\d+)", out, re.M))
    assert hot["value"] == str(HOT), out
