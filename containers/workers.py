"""Worker threads for loads and predictions, so the event loop keeps answering ``/ping``.

Leaner than ``loop.run_in_executor``: a C ``SimpleQueue`` in, one ``call_soon_threadsafe`` out, no
``concurrent.futures`` locks. The hop costs about half as much, which matters when a prediction
takes well under a millisecond. Each thread runs an initializer first (per-thread OpenMP limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
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


class WorkerThreads:
    """A fixed set of daemon threads taking jobs from one queue."""

    def __init__(
        self, count: int, name: str, initializer: Callable[[], None] | None = None
    ) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._initializer = initializer
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}_{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        if self._initializer is not None:
            try:
                self._initializer()
            except Exception:
                log.exception("worker thread initializer failed")
        while (job := self._jobs.get()) is not None:
            loop, future, func, args = job
            try:
                result = func(*args)
            except Exception as exc:
                outcome: tuple[bool, Any] = (False, exc)
            except BaseException as exc:  # SystemExit from user code must not reach the loop
                outcome = (False, RuntimeError(f"worker job raised {type(exc).__name__}: {exc}"))
            else:
                outcome = (True, result)
            with contextlib.suppress(RuntimeError):  # the loop closed while the job ran
                loop.call_soon_threadsafe(_settle, future, *outcome)
            del job, future, outcome

    def submit(self, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``func(*args)`` in a worker thread; await the returned future on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, func, args))
        return future

    def shutdown(self) -> None:
        """Stop the threads once their current job ends (they are daemons: exit doesn't wait)."""
        for _ in self._threads:
            self._jobs.put(None)
