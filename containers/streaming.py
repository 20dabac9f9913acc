"""Answers in parts: an ``output_fn``/``transform_fn`` that returns a generator streams it.

Each item the generator yields (bytes, or str sent as UTF-8) goes out as one chunk of a chunked
``/invocations`` answer as soon as it is produced; the gateway forwards each as one ``PayloadPart``
of InvokeEndpointWithResponseStream (and an ordinary InvokeEndpoint gets them joined). The first
item is produced in the prediction's worker thread, so a generator that fails at once is an
ordinary error answer; one that fails later breaks the chunked answer off (no closing chunk),
which the gateway reports as a ``ModelStreamError``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse

from containers.errors import UserCodeError

log = logging.getLogger(__name__)


class StreamedParts(bytes):
    """An answer still being produced: empty ``bytes`` carrying the parts.

    A ``bytes`` so it travels unchanged through the code that passes answers along (the reply,
    adaptive batching) and only the HTTP layer, which checks for it, tells the difference.
    """

    parts: Iterator[bytes]

    def __new__(cls, parts: Iterator[bytes]) -> StreamedParts:
        self = super().__new__(cls, b"")
        self.parts = parts
        return self


def is_stream(result: Any) -> bool:
    """Whether user code returned something to stream: a generator or any other iterator."""
    return isinstance(result, Iterator) and not isinstance(result, bytes | str)


def streamed(result: Iterator[Any], where: str) -> StreamedParts:
    """``result``'s parts, its first already produced (here, in the caller's worker thread)."""
    items = _parts(result, where)
    first = next(items, None)
    if first is None:
        return StreamedParts(iter(()))
    return StreamedParts(_chain(first, items))


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _parts(result: Iterator[Any], where: str) -> Iterator[bytes]:
    """Each item as bytes; empty items skipped (an empty chunk would end the answer)."""
    index = 0
    try:
        while True:
            try:
                item = next(result)
            except StopIteration:
                return
            except Exception as exc:
                log.exception("the generator returned by %s failed at part %d", where, index + 1)
                raise UserCodeError(
                    f"the generator returned by {where} raised {type(exc).__name__} at part "
                    f"{index + 1}: {exc}"
                ) from exc
            index += 1
            if isinstance(item, str):
                item = item.encode()
            elif isinstance(item, bytearray | memoryview):
                item = bytes(item)
            elif not isinstance(item, bytes):
                raise UserCodeError(
                    f"the generator returned by {where} yielded {type(item).__name__} at part "
                    f"{index}; yield bytes or str"
                )
            if item:
                yield item
    finally:
        close = getattr(result, "close", None)
        if close is not None:  # ended, failed or abandoned: let the user's generator clean up
            close()


def streaming_response(
    body: StreamedParts, content_type: str, headers: dict[str, str] | None
) -> StreamingResponse:
    """The chunked answer: each part produced in a worker thread, sent as soon as it is."""
    return StreamingResponse(_produce(body.parts), media_type=content_type, headers=headers)


async def _produce(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for part in iterate_in_threadpool(parts):
            yield part
    finally:
        close = getattr(parts, "close", None)
        if close is not None:  # the client left: stop producing
            try:
                close()
            except ValueError:  # a part is being produced in a thread right now
                log.warning("a streamed answer was abandoned while producing a part")
