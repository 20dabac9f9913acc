"""Read a request body whole, refused as soon as it is known to exceed the limit.

Both the invocations hot path and the SigV4 check (a signature covers the body) read bodies this
way, so an oversized body is refused with the same answer wherever it is caught.
"""

from __future__ import annotations

from starlette.types import Receive

from gateway.errors import InvalidRequest


async def read_body(receive: Receive, length: bytes | None, limit: int) -> bytes | None:
    """The body, or None when the client left first; ``length`` is its Content-Length header."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: one message, no copy
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def too_large(size: int | None, limit: int) -> InvalidRequest:
    what = "Request body" if size is None else f"Request body of {size} bytes"
    return InvalidRequest(f"{what} exceeds the limit of {limit} bytes.")
