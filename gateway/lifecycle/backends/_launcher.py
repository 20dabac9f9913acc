"""A tiny launcher between the gateway and one container process: no orphans, whatever happens.

Run as ``python -I -S _launcher.py GATEWAY_PID GRACE -- COMMAND...`` (standard library only). It

- dies with the gateway (``PR_SET_PDEATHSIG``), even when the gateway is killed with SIGKILL;
- starts the command in its own session, so that the container's own children form one process
  group that can be signalled at once, and makes that child die with the launcher too;
- adopts the container's orphans (``PR_SET_CHILD_SUBREAPER``), kills them when the container ends;
- on SIGTERM/SIGINT/SIGHUP: SIGTERM to the container's group, SIGKILL after GRACE seconds;
  on SIGUSR1: SIGKILL to the group at once;
- exits with the container's exit code (128+N when signal N ended it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
HANDLED = {*STOP_SIGNALS, signal.SIGUSR1, signal.SIGALRM}

_libc = ctypes.CDLL(None, use_errno=True)
_child = 0
_stopping = False


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _signal_group(sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(_child, sig)


def _on_stop(signum: int, _frame: object) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    _signal_group(signal.SIGTERM)
    signal.setitimer(signal.ITIMER_REAL, _grace if _grace > 0 else 0.001)


def _on_kill(signum: int, _frame: object) -> None:
    _signal_group(signal.SIGKILL)


def _own_children() -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.extend(int(p) for p in f.read().split())
    except OSError:
        pass
    return pids


def _sweep() -> None:
    """Kill and reap whatever is left: the container's group and any orphan we adopted."""
    _signal_group(signal.SIGKILL)
    for _ in range(1000):
        children = _own_children()
        if not children:
            break
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            break


def _exec_child(command: list[str], launcher: int) -> None:
    """In the forked child: own session, die with the launcher, then become the command."""
    try:
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != launcher:
            os._exit(1)
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"tandem: cannot run {command[0]!r}: {exc.strerror or exc}\n".encode())
        os._exit(127)


_grace = 0.0


def main(argv: list[str]) -> int:
    global _child, _grace
    if len(argv) < 5 or argv[3] != "--":
        sys.stderr.write("usage: _launcher.py GATEWAY_PID GRACE -- COMMAND...\n")
        return 2
    gateway, _grace, command = int(argv[1]), float(argv[2]), argv[4:]
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != gateway:  # the gateway died before prctl took effect
        return 1
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    launcher = os.getpid()
    _child = os.fork()
    if _child == 0:
        _exec_child(command, launcher)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop)
    signal.signal(signal.SIGUSR1, _on_kill)
    signal.signal(signal.SIGALRM, _on_kill)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == _child:
            break
    signal.setitimer(signal.ITIMER_REAL, 0)
    _sweep()
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
