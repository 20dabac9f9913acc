"""SIGKILL at any moment leaves a sound database holding every write it acknowledged.

A child process writes in a loop and prints each change after its commit returned; the test
kills it with SIGKILL after a random number of those lines (sometimes before the first, while the
schema is being created), several times over the same file, then opens the file and checks it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

from gateway.state import FILENAME, EndpointStatus, StateStore
from tests.support import PYTHON, ROOT

RUNS = 8


def run_and_kill(db: Path, first: int, lines_before_kill: int) -> list[list[str]]:
    """Start the writer, SIGKILL it once it has acknowledged that many writes; return them."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "tests.gateway.state.writer", str(db), str(first)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged: list[list[str]] = []
    try:
        while len(acknowledged) < lines_before_kill:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the writer stopped on its own: {proc.communicate()[1]}")
            acknowledged.append(line.split())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        # What it printed before dying was acknowledged too.
        rest, _ = proc.communicate(timeout=30)
    acknowledged += [line.split() for line in rest.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    return acknowledged


def check(store: StateStore, acknowledged: list[list[str]]) -> None:
    status: dict[str, str] = {}
    removed: set[str] = set()
    for fact in acknowledged:
        kind, args = fact[0], fact[1:]
        if kind == "model":
            assert store.get_model(args[0]) is not None, fact
        elif kind == "config":
            config = store.get_config(args[0])
            assert config is not None and config.models == {"A": args[1]}, fact
        elif kind == "endpoint":
            status[args[0]] = "Creating"
        elif kind == "status":
            status[args[0]] = args[1]
        elif kind == "removed":
            removed.add(args[0])
        elif kind == "job":
            assert store.get_job(args[0]) is not None, fact
        elif kind == "progress":
            job = store.get_job(args[0])
            assert job is not None and job.progress == {"records": int(args[1])}, fact
        elif kind == "jobstatus":
            job = store.get_job(args[0])
            assert job is not None and job.status == args[1] and job.ended is not None, fact
    for name, last in status.items():
        endpoint = store.get_endpoint(name)
        if name in removed:
            assert endpoint is None, name
            continue
        if endpoint is None:
            # Deleting was acknowledged and the removal after it committed, unacknowledged.
            assert last == "Deleting", (name, last)
            continue
        # The write after the last acknowledged one may have committed too, never one before.
        order = ["Creating", "InService", "Deleting"]
        assert order.index(endpoint.status) >= order.index(last), (name, endpoint.status, last)
    for endpoint in store.endpoints():
        assert store.get_config(endpoint.config) is not None
        assert endpoint.status in set(EndpointStatus)
    for job in store.jobs():
        assert store.get_model(job.model) is not None


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / FILENAME
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    acknowledged: list[list[str]] = []
    for run in range(RUNS):
        # Run 0 is killed before it acknowledged anything: possibly inside the first migration.
        lines = 0 if run == 0 else rng.randint(1, 120)
        acknowledged += [f for f in run_and_kill(db, run * 100_000, lines) if f != ["open"]]
        with StateStore(db) as store:
            assert store.check() == []
            check(store, acknowledged)
    assert len(acknowledged) > RUNS  # the loop did write between the kills
