"""Helpers for the HAProxy test: a Zipf stream of invocations, HAProxy's view of its servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil


def zipf_stream(
    targets: list[str], count: int, *, exponent: float = 1.1, seed: int = 0
) -> list[str]:
    """``count`` draws where the model of rank r comes with probability proportional to 1/r^s."""
    weights = 1.0 / np.arange(1, len(targets) + 1) ** exponent
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(targets), size=count, p=weights / weights.sum())
    return [targets[i] for i in picks]


@dataclass
class Outcome:
    target: str
    started: float
    ok: bool
    detail: str = ""


@dataclass
class Stream:
    """Sends targets from several threads until told to stop or out of targets; keeps outcomes."""

    send: Callable[[str], str | None]  # None when the answer was right, else what was wrong
    workers: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, targets: list[str]) -> None:
        queue = iter(targets)

        def worker() -> None:
            while not self._stop.is_set():
                with self._lock:
                    target = next(queue, None)
                if target is None:
                    return
                started = time.monotonic()
                try:
                    problem = self.send(target)
                except Exception as exc:  # every failure counts, whatever raised it
                    problem = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.outcomes.append(Outcome(target, started, problem is None, problem or ""))

        with ThreadPoolExecutor(self.workers) as pool:
            for future in [pool.submit(worker) for _ in range(self.workers)]:
                future.result()

    def stop(self) -> None:
        self._stop.set()

    def done(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def after(self, moment: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.started >= moment]


def server_status(stats_socket: Path, backend: str) -> dict[str, str]:
    """Server name -> status (``UP``, ``DOWN`` ...) as HAProxy sees it, from ``show stat``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        r["svname"]: r["status"]
        for r in rows
        if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
    }


def gateway_process(state_dir: Path) -> psutil.Process:
    """The ``tandem serve`` child of this test whose ``--state-dir`` is ``state_dir``."""
    for child in psutil.Process().children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if argv[1:4] == ["-m", "gateway", "serve"] and str(state_dir) in argv:
            return child
    raise LookupError(f"no gateway runs with --state-dir {state_dir}")
