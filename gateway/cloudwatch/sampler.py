"""An instance's CPU, memory and disk as SageMaker's ``/aws/sagemaker/Endpoints`` metrics.

An instance is one copy of a variant's containers: a few process trees (a container's launcher
and everything under it). ``InstanceSampler.sample`` measures them, for the serving side to pass
to ``MetricRecorder.instance_sample``: CPU is the CPU time the trees used since the last sample
of the same instance over the wall time between (100 per busy core, as SageMaker reports it, so
it may pass 100), memory the trees' resident bytes over the instance's limit, and disk the use of
the file system that holds the instance's folder. Nothing here knows what an instance is made of:
the caller names the process ids, the limit and the folder. A process that is gone counts as 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True, slots=True)
class Sample:
    cpu: float
    memory: float
    disk: float


def tree_usage(pids: Iterable[int]) -> tuple[float, int]:
    """CPU seconds (user + system) and resident bytes of the trees under ``pids``."""
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    rss += proc.memory_info().rss
            except psutil.Error:  # it ended between the listing and the reading
                continue
    return cpu, rss


class InstanceSampler:
    """Samples instances by a key of the caller's choosing (e.g. the instance's runtime)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: key -> (CPU seconds, when), as of the last sample.
        self._last: dict[object, tuple[float, float]] = {}

    def sample(
        self, key: object, pids: Iterable[int], memory_limit: int, folder: Path
    ) -> Sample | None:
        """The instance's sample; None the first time (CPU needs two readings)."""
        cpu, rss = tree_usage(pids)
        now = self._clock()
        last = self._last.get(key)
        self._last[key] = (cpu, now)
        if last is None or now <= last[1]:
            return None
        busy = max(cpu - last[0], 0.0) / (now - last[1]) * 100
        memory = 100.0 * rss / memory_limit if memory_limit > 0 else 0.0
        try:
            disk = float(psutil.disk_usage(str(folder)).percent)
        except OSError:
            disk = 0.0
        return Sample(busy, memory, disk)

    def forget(self, keep: Iterable[object]) -> None:
        """Drop what is remembered of instances not in ``keep`` (they were stopped)."""
        wanted = set(keep)
        for key in [k for k in self._last if k not in wanted]:
            del self._last[key]
