"""One container the docker backend started: its output, its exit, its memory, its removal.

The SDK blocks, so each container's output is followed by a thread of its own (a log stream ends
when the container does); what the threads learn reaches the event loop thread-safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gateway.lifecycle.backends.base import LineSink

if TYPE_CHECKING:
    from docker import APIClient

logger = logging.getLogger("tandem.backend")

MAX_LINE = 16 * 1024
#: Seconds the gateway waits beyond the engine's own stop timeout before killing.
STOP_MARGIN = 5.0


class DockerHandle:
    """One started container; a thread follows its output, then reports its exit code."""

    def __init__(
        self,
        api: APIClient,
        streams: APIClient,
        cid: str,
        url: str,
        on_line: LineSink,
        *,
        watch_memory: bool,
    ) -> None:
        self._api = api
        #: A client without a read timeout: a quiet container's log stream may idle for hours.
        self._streams = streams
        self._id = cid
        self._url = url
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._memory: int | None = None
        self._removed = False
        name = f"logs {cid[:12]}"
        threading.Thread(target=self._follow, args=(on_line,), name=name, daemon=True).start()
        if watch_memory:
            threading.Thread(target=self._stats, name=f"stats {cid[:12]}", daemon=True).start()

    @property
    def url(self) -> str:
        return self._url

    @property
    def pid(self) -> int | None:
        return None  # the engine's process, not one the gateway owns

    @property
    def id(self) -> str:
        return self._id

    @property
    def alive(self) -> bool:
        return not self._exited.done()

    def memory(self) -> int | None:
        """Bytes in use per the engine's stats (kept for MultiModel containers only)."""
        return self._memory if self.alive else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def stop(self, grace: float) -> int:
        """SIGTERM via the engine, which SIGKILLs after ``grace``; then remove the container."""
        try:
            await asyncio.to_thread(self._api.stop, self._id, timeout=max(int(grace), 0))
        except Exception as exc:  # gone already, or the engine is: the exit wait tells
            logger.debug("stop %s: %s", self._id[:12], exc)
        return await self._finish()

    async def kill(self) -> int:
        try:
            await asyncio.to_thread(self._api.kill, self._id)
        except Exception as exc:
            logger.debug("kill %s: %s", self._id[:12], exc)
        return await self._finish()

    async def _finish(self) -> int:
        try:
            code = await asyncio.wait_for(self.wait(), timeout=STOP_MARGIN)
        except TimeoutError:
            code = 137
        await asyncio.to_thread(self.remove)
        return code

    def remove(self) -> None:
        """Best effort: what stays behind is removed by the next ``reap_leftovers``."""
        from docker.errors import NotFound

        if self._removed:
            return
        try:
            self._api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except Exception as exc:
            logger.warning("cannot remove container %s: %s", self._id[:12], exc)
            return
        self._removed = True

    def _follow(self, on_line: LineSink) -> None:
        """Thread: feed each output line to ``on_line`` in the loop, then report the exit."""
        api = self._streams
        try:
            stream = api.logs(self._id, stream=True, follow=True, stdout=True, stderr=True)
            for line in _lines(stream):
                self._call(on_line, line)
        except Exception as exc:  # the engine went away; the exit code below still tells
            logger.debug("log stream of %s ended: %s", self._id[:12], exc)
        code = 137
        try:
            code = int(api.wait(self._id, timeout=None)["StatusCode"])
        except Exception as exc:  # already removed: the gateway stopped or killed it
            logger.debug("wait for %s: %s", self._id[:12], exc)
        self._call(self._set_exit, code)

    def _stats(self) -> None:
        with contextlib.suppress(Exception):  # no stats: memory stays unknown
            for sample in self._streams.stats(self._id, decode=True, stream=True):
                usage = (sample.get("memory_stats") or {}).get("usage")
                self._memory = int(usage) if usage else None
                if not self.alive:
                    break

    def _set_exit(self, code: int) -> None:
        if not self._exited.done():
            self._exited.set_result(code)

    def _call(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(_safely, fn, *args)


def _safely(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a broken sink must not stop the stream
        logger.exception("log sink failed")


def _lines(stream: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a stream of chunks; overlong lines are cut, bad bytes replaced."""
    buffer = b""
    for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        if len(buffer) > MAX_LINE:
            lines.append(buffer[:MAX_LINE])
            buffer = b""
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
    if buffer:
        yield buffer.rstrip(b"\r").decode("utf-8", errors="replace")
