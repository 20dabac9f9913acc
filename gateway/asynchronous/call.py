"""One queued request through the same invocation core as a real-time call: its input read,
its own timeout and size limit, its errors as the async contract names them, an S3 answer
written (a local answer is the group commit's to write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.asynchronous.outcome import Failed, call_failure
from gateway.asynchronous.storage import Storage, StorageError, is_s3
from gateway.calls import InvocationRequest
from gateway.errors import ServiceUnavailable
from gateway.serving.invocation import Invocations
from gateway.state import QueuedInvocation

#: Seconds past InvocationTimeoutSeconds before the worker gives up on a call by itself.
GRACE = 5.0


async def run_queued(
    row: QueuedInvocation,
    invocations: Invocations,
    storage: Storage,
    max_bytes: int,
    broke_off: Callable[[QueuedInvocation, ServiceUnavailable], None],
) -> tuple[str | None, bytes | None]:
    """Run the request; its answer's content type, and the answer when it is for the group
    commit to write (a local one; an S3 one is written here). ``broke_off`` counts a container
    breaking off the request (and raises Failed at the limit). Raises Failed."""
    try:
        if row.body is not None:
            data = row.body
        else:
            assert row.input_location is not None
            data = await asyncio.to_thread(storage.read, row.input_location, max_bytes)
    except StorageError as exc:
        raise Failed("InputError", f"The input could not be read: {exc}") from None
    request = InvocationRequest(
        body=data,
        content_type=row.request.get("ContentType"),
        accept=row.request.get("Accept"),
        custom_attributes=row.request.get("CustomAttributes"),
        inference_id=row.inference_id,
    )
    # The request's own timeout and size limit, not the real-time ones; the dispatcher
    # keeps the deadline, the wait here only guards against a step that ignores it.
    call = invocations.invoke(
        row.endpoint, None, request, timeout=row.timeout, max_body=max_bytes, copies=False
    )
    try:
        # A deadline on this task, not ``wait_for``'s task of its own per call (3.11).
        async with asyncio.timeout(row.timeout + GRACE):
            done = await call
    except TimeoutError:
        raise Failed(
            "ModelError",
            f"The invocation timed out: the endpoint did not answer within its "
            f"InvocationTimeoutSeconds ({round(row.timeout)} s).",
        ) from None
    error = done.error
    if isinstance(error, ServiceUnavailable):
        # Raised from a transport error, it went out to an InService container that broke
        # off this very request (crashed, cut its answer, answered something not HTTP).
        if error.__cause__ is not None:
            broke_off(row, error)
        raise error
    if error is not None:
        raise call_failure(row, error, known=done.instance is not None)
    assert done.result is not None
    result = done.result
    if not is_s3(row.output_location):
        # Written and put in place by the group commit that marks it Completed.
        return result.content_type, result.body
    try:
        await asyncio.to_thread(storage.write, row.output_location, result.body)
    except StorageError as exc:
        raise Failed("OutputError", f"The answer could not be written: {exc}") from None
    return result.content_type, None
