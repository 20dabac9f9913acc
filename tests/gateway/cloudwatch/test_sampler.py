"""Instance samples read from real processes: a busy one and an idle one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from gateway.cloudwatch.sampler import InstanceSampler, tree_usage
from tests.support import wait_until

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
IDLE = "import time; print('ready', flush=True); time.sleep(30)"


def spawn(code: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=stdout)


def test_a_busy_tree_uses_cpu_an_idle_one_does_not(tmp_path: Path) -> None:
    busy, idle = spawn(BUSY), spawn(IDLE, subprocess.PIPE)
    try:
        # The idle child's interpreter start-up is CPU too: read it first once it sleeps.
        assert idle.stdout is not None and idle.stdout.readline() == b"ready\n"
        sampler = InstanceSampler()
        limit = psutil.virtual_memory().total
        assert sampler.sample("busy", [busy.pid], limit, tmp_path) is None  # the first reading
        assert sampler.sample("idle", [idle.pid], limit, tmp_path) is None
        # Wait for CPU time itself (not wall time): the busy child must have run a while.
        start = tree_usage([busy.pid])[0]
        wait_until(lambda: tree_usage([busy.pid])[0] - start >= 0.3, timeout=30, what="CPU used")
        hot = sampler.sample("busy", [busy.pid], limit, tmp_path)
        cold = sampler.sample("idle", [idle.pid], limit, tmp_path)
        assert hot is not None and cold is not None
        assert hot.cpu > 5.0 > cold.cpu
        assert 0.0 < hot.memory < 100.0
        assert 0.0 < hot.disk <= 100.0
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
        if idle.stdout is not None:
            idle.stdout.close()


def test_gone_processes_count_as_nothing(tmp_path: Path) -> None:
    gone = spawn("pass")
    gone.wait()
    assert tree_usage([gone.pid]) == (0.0, 0)
    sampler = InstanceSampler()
    sampler.sample("x", [gone.pid], 1, tmp_path)
    sampler.forget([])
    assert sampler.sample("x", [gone.pid], 1, tmp_path) is None  # forgotten: a first reading
