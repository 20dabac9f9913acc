"""The worker threads: each job answers its own future; the warm thread takes the next job."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from containers.workers import WorkerThreads
from tests.support import wait_until


def test_many_concurrent_jobs_each_get_their_own_answer() -> None:
    pool = WorkerThreads(3, "t")

    def work(n: int) -> tuple[int, str]:
        time.sleep(0.001 * (n % 3))
        return n * n, threading.current_thread().name

    async def main() -> list[tuple[int, str]]:
        return await asyncio.gather(*(pool.submit(work, n) for n in range(300)))

    try:
        answers = asyncio.run(main())
    finally:
        pool.shutdown()
    assert [square for square, _ in answers] == [n * n for n in range(300)]
    assert {name for _, name in answers} <= {"t_0", "t_1", "t_2"}
    assert len({name for _, name in answers}) > 1  # queued jobs spread over the busy threads


def test_errors_reach_the_caller_and_the_threads_go_on() -> None:
    pool = WorkerThreads(1, "t")

    def fail() -> None:
        raise ValueError("bad row")

    def leave() -> None:
        raise SystemExit(3)

    async def main() -> None:
        with pytest.raises(ValueError, match="bad row"):
            await pool.submit(fail)
        with pytest.raises(RuntimeError, match="SystemExit"):
            await pool.submit(leave)
        assert await pool.submit(lambda: 7) == 7

    try:
        asyncio.run(main())
    finally:
        pool.shutdown()


def test_sequential_jobs_stay_on_the_thread_that_went_idle_last() -> None:
    pool = WorkerThreads(4, "t")

    async def main() -> set[str]:
        names = set()
        for _ in range(50):
            names.add(await pool.submit(lambda: threading.current_thread().name))
        return names

    try:
        assert len(asyncio.run(main())) == 1
    finally:
        pool.shutdown()


def test_shutdown_stops_idle_and_busy_threads() -> None:
    pool = WorkerThreads(3, "t")
    release = threading.Event()

    async def main() -> None:
        busy = pool.submit(release.wait, 5)
        await asyncio.sleep(0)
        pool.shutdown()
        release.set()
        assert await busy is True

    asyncio.run(main())
    wait_until(lambda: not any(w.thread.is_alive() for w in pool._workers), timeout=5)
