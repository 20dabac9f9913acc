"""NotificationConfig's webhooks: SageMaker's success / error message POSTed, off the queue's path.

SageMaker publishes to SNS; Tandem POSTs the same JSON document to an ``http(s)://`` URL. Each
message is sent by a task of its own, retried a few times with backoff, and given up with a log
line: a slow or dead webhook never holds a worker or the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.state import QueuedInvocation

log = logging.getLogger("tandem.async")

ATTEMPTS = 4
BACKOFF = 0.5
TIMEOUT = 10.0


def _time(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def message(
    row: QueuedInvocation,
    *,
    region: str,
    ok: bool,
    ended: float,
    content_type: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The notification SageMaker sends for one finished request (``eventName`` InferenceResult).

    ``requestParameters`` holds what the call said (SageMaker's: accept, contentType,
    endpointName, inputLocation; Tandem adds customAttributes), ``responseParameters`` where the
    answer or the failure document is and its content type.
    """
    request = {
        k: v
        for k, v in {
            "accept": row.request.get("Accept"),
            "contentType": row.request.get("ContentType"),
            "customAttributes": row.request.get("CustomAttributes"),
            "endpointName": row.endpoint,
            "inputLocation": row.request.get("InputLocation"),
        }.items()
        if v is not None
    }
    out: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": _time(ended),
        "receivedTime": _time(row.created),
        "invocationStatus": "Completed" if ok else "Failed",
        "requestParameters": request,
        "inferenceId": row.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if ok:
        response = {"outputLocation": row.output_location}
        if content_type:
            response["contentType"] = content_type
        out["responseParameters"] = response
    else:
        out["failureReason"] = reason or "unknown"
        out["responseParameters"] = {
            "contentType": "application/json",
            "failureLocation": row.failure_location,
        }
    return out


class Notifier:
    """Sends messages in the background; ``aclose`` gives pending ones a moment, then stops."""

    def __init__(self, backoff: float = BACKOFF) -> None:
        self.backoff = backoff
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str | None, body: dict[str, Any]) -> None:
        if not url:
            return
        task = asyncio.get_running_loop().create_task(self._post(url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT)
        problem = ""
        for attempt in range(ATTEMPTS):
            try:
                answer = await self._client.post(url, json=body)
                if answer.status_code < 300:
                    return
                problem = f"HTTP {answer.status_code}"
                if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
                    break  # the webhook refuses it: asking again will not help
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.backoff * 2**attempt)
        log.warning(
            "notification for %s (%s) to %s not delivered: %s",
            body.get("inferenceId"),
            body.get("invocationStatus"),
            url,
            problem,
        )

    async def aclose(self, grace: float = 2.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
