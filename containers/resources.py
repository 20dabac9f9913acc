"""What this container may use: CPUs (affinity and cgroup quota), a memory limit, current RSS.

Read from cgroup v2 (``cpu.max``, ``memory.max``) with a v1 fallback, so a ``docker run --cpus 2
--memory 1g`` container sizes itself without configuration.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: cgroup v1 reports "no limit" as a huge number (page-aligned LONG_MAX).
_V1_UNLIMITED = 1 << 60


def _own_cgroup_dirs() -> list[Path]:
    """This process's cgroup v2 dir (from /proc/self/cgroup) and the root, most specific first."""
    dirs: list[Path] = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, _, rest = line.partition(":")
            _, _, path = rest.partition(":")
            if hierarchy == "0" and path.strip("/"):
                dirs.append(CGROUP_ROOT / path.strip("/"))
    except OSError:
        pass
    dirs.append(CGROUP_ROOT)
    return dirs


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup quota (may be fractional), or ``None`` when unlimited."""
    for folder in _own_cgroup_dirs():
        text = _read(folder / "cpu.max")
        if text is not None:
            quota, _, period = text.partition(" ")
            if quota == "max":
                return None
            try:
                return int(quota) / int(period or "100000")
            except ValueError:
                return None
    quota_text = _read(CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us")
    period_text = _read(CGROUP_ROOT / "cpu" / "cpu.cfs_period_us")
    if quota_text and period_text and int(quota_text) > 0:
        return int(quota_text) / int(period_text)
    return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def predicting_threads() -> int:
    """How many threads of one worker process may predict at once: one per CPU, at least 2."""
    return max(2, available_cpus())


def thread_counts(intra: int, inter: int, workers: int = 1, callers: int = 1) -> tuple[int, int]:
    """Thread pool sizes for one worker process: the env override, else the CPUs shared out.

    ``callers`` is how many threads may each start their own intra-op team at once (OpenMP's
    count is per calling thread): the default intra-op size is shared out between them too, so
    that the teams together never ask for more threads than there are CPUs.
    """
    cpus = available_cpus()
    share = max(1, cpus // max(1, workers))
    return (intra or max(1, share // max(1, callers)), inter or share)


def cgroup_memory_limit() -> int | None:
    """The cgroup memory limit in bytes, or ``None`` when there is none."""
    for folder in _own_cgroup_dirs():
        text = _read(folder / "memory.max")
        if text is not None:
            return None if text == "max" else int(text)
    text = _read(CGROUP_ROOT / "memory" / "memory.limit_in_bytes")
    if text is not None and text.isdigit() and int(text) < _V1_UNLIMITED:
        return int(text)
    return None


def memory_limit(limit_mb: float | None) -> int | None:
    """The configured limit (MiB) in bytes, else the cgroup's, else ``None``."""
    if limit_mb is not None:
        return int(limit_mb * 1024 * 1024)
    return cgroup_memory_limit()


#: A process's memory counters (Linux): one small read, no process object to build.
_STATM = "/proc/{}/statm"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss(pid: int | None = None) -> int:
    """Resident memory of this process (or of ``pid``), in bytes; 0 for a process that is gone.

    Read twice or three times per model load: ``psutil.Process()`` reads and parses the
    process's stat file to identify it each time, a fifth of a 1 MB model's load in the
    container's profile, where ``/proc/<pid>/statm`` is one read.
    """
    try:
        with open(_STATM.format("self" if pid is None else pid), "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except FileNotFoundError:  # gone, or no /proc at all (not Linux)
        return 0 if os.path.isdir("/proc/self") else _psutil_rss(pid)
    except (OSError, IndexError, ValueError):
        return _psutil_rss(pid)


def _psutil_rss(pid: int | None) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none (musl, macOS)."""
    try:
        return cast("Callable[[int], int]", ctypes.CDLL("libc.so.6").malloc_trim)
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Give the heap's free pages back to the system after an unload.

    glibc keeps freed memory in its arenas: after a thousand loads and unloads of models of
    mixed sizes a worker held 12-25 % more resident memory than its models, and since the
    platform plans room by resident memory, fewer models fit. ``malloc_trim(0)`` takes about
    0.1 ms, and ctypes lets the GIL go while it runs.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def tree_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed): a model's load estimate."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += stat.st_size
    return total
