"""The health check: one ``GET /ping`` on a fresh connection, dependency-free and cheap."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


async def ping(url: str, *, timeout: float) -> bool:
    """True when ``url``/ping answers 200 within ``timeout`` seconds; any failure is False."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET /ping HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await reader.readline()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    fields = status_line.split()
    return len(fields) >= 2 and fields[1] == b"200"
