"""Worker threads for loads and predictions, so the event loop keeps answering ``/ping``.

Leaner than ``loop.run_in_executor``: one lock in, one ``call_soon_threadsafe`` out, no
``concurrent.futures`` machinery. Idle threads wait in a stack and the last one to go idle takes
the next job: with a shared queue the longest-idle thread would, so back-to-back requests would
hop between threads (and CPUs) and find the model's data cold in the caches, which cost a tree
ensemble about a fifth of its time here. Each thread runs an initializer first (per-thread OpenMP
limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled: the caller timed out or went away
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _run_job(job: _Job) -> tuple[bool, Any]:
    _, _, func, args = job
    try:
        return True, func(*args)
    except Exception as exc:
        return False, exc
    except BaseException as exc:  # SystemExit from user code must not reach the loop
        return False, RuntimeError(f"worker job raised {type(exc).__name__}: {exc}")


def _answer(job: _Job, outcome: tuple[bool, Any]) -> None:
    loop, future, _, _ = job
    with contextlib.suppress(RuntimeError):  # the loop closed while the job ran
        loop.call_soon_threadsafe(_settle, future, *outcome)


class _Worker:
    """One thread; ``wake`` is held while it sleeps and released to hand it ``job``."""

    def __init__(self, pool: WorkerThreads, name: str) -> None:
        self.pool = pool
        self.wake = threading.Lock()
        self.wake.acquire()
        self.job: _Job | None = None
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def run(self) -> None:
        pool = self.pool
        if pool.initializer is not None:
            try:
                pool.initializer()
            except Exception:
                log.exception("worker thread initializer failed")
        queued, parked = pool.park(self)
        job = self.take() if parked else queued
        while job is not None:
            outcome = _run_job(job)
            # Back on the idle stack before answering, so the caller's next job finds this thread.
            queued, parked = pool.park(self)
            _answer(job, outcome)
            del job, outcome
            job = self.take() if parked else queued

    def take(self) -> _Job | None:
        """Sleep until handed a job (``None``: stop)."""
        self.wake.acquire()
        job, self.job = self.job, None
        return job


class WorkerThreads:
    """A fixed set of daemon threads; jobs wait in a queue only while every thread is busy."""

    def __init__(
        self, count: int, name: str, initializer: Callable[[], None] | None = None
    ) -> None:
        self.initializer = initializer
        self._lock = threading.Lock()
        self._jobs: deque[_Job] = deque()
        self._idle: list[_Worker] = []  # a stack: the most recently busy thread is on top
        self._closed = False
        self._workers = [_Worker(self, f"{name}_{i}") for i in range(count)]
        for worker in self._workers:
            worker.thread.start()

    def park(self, worker: _Worker) -> tuple[_Job | None, bool]:
        """A queued job for ``worker``, else push it on the idle stack (then ``parked`` is true)."""
        with self._lock:
            if self._jobs:
                return self._jobs.popleft(), False
            if self._closed:
                return None, False
            self._idle.append(worker)
        return None, True

    def submit(self, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``func(*args)`` in a worker thread; await the returned future on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job: _Job = (loop, future, func, args)
        with self._lock:
            if not self._idle:
                self._jobs.append(job)
                return future
            worker = self._idle.pop()
            worker.job = job
        worker.wake.release()
        return future

    def shutdown(self) -> None:
        """Stop the threads once their current job ends (they are daemons: exit doesn't wait)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.wake.release()  # no job: it stops
