"""Helpers shared by the tests: free ports, polling with a deadline, real server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout}s (last error: {last_error!r})")


def wait_for_ping(
    url: str,
    *,
    timeout: float = 60.0,
    proc: subprocess.Popen[bytes] | None = None,
    path: str = "/ping",
) -> None:
    """Poll ``url + path`` until it answers 200; fail early if ``proc`` exits."""

    def check() -> bool:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before becoming ready")
        return httpx.get(url + path, timeout=2.0).status_code == 200

    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except AssertionError:
            raise
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}{path} not ready within {timeout}s")
        time.sleep(0.05)


@contextmanager
def running(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    url: str | None = None,
    timeout: float = 90.0,
    cwd: Path | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a real server process, wait for its ``/ping`` when ``url`` is given, stop it after."""
    full_env = {**os.environ, **(env or {})}
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        list(args),
        env=full_env,
        cwd=cwd or ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if url is not None:
            try:
                wait_for_ping(url, timeout=timeout, proc=proc)
            except (AssertionError, TimeoutError) as exc:
                tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
                raise AssertionError(
                    f"{' '.join(args)} did not become ready: {exc}\n{tail}"
                ) from exc
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]


PYTHON = sys.executable
