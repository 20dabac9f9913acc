"""Invoking an endpoint over the SageMaker runtime API, with timeouts and retries.

Retries cover what may pass by itself: throttling (429), an unavailable or failing gateway (5xx), a
container that answered 502/503/504, connection errors and timeouts. A model rejecting its input
(``ModelError`` with a 4xx, or a 500 from the container) is not retried: it would fail again.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.batch.errors import InvocationError

log = logging.getLogger("tandem.batch")

#: Longest error message kept from an answer, so a huge HTML error page cannot flood the report.
MAX_MESSAGE = 2000
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 8.0
_RETRY_STATUS = {429, 500, 502, 503, 504}
_RETRY_ORIGINAL = {502, 503, 504}


class EndpointClient:
    """One pooled keep-alive session to one endpoint, shared by every worker of a job."""

    def __init__(
        self,
        url: str,
        endpoint: str,
        *,
        timeout: float,
        retries: int,
        concurrency: int = 1,
        target_container: str | None = None,
        target_model: str | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.endpoint = endpoint
        self.invoke_url = f"{self.base}/endpoints/{quote(endpoint, safe='')}/invocations"
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
        self.headers: dict[str, str] = {}
        if target_container:
            self.headers["X-Amzn-SageMaker-Target-Container-Hostname"] = target_container
        if target_model:
            self.headers["X-Amzn-SageMaker-Target-Model"] = target_model
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EndpointClient:
        connector = aiohttp.TCPConnector(limit=max(self.concurrency, 1) + 2)
        # No total timeout on the session: each call carries its own.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("EndpointClient is used outside 'async with'")
        return self._session

    async def invoke(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[bytes, str]:
        """POST one payload; return the answer and its content type, retrying what may pass."""
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        attempt = 0
        while True:
            try:
                return await self._invoke_once(body, headers)
            except InvocationError as exc:
                if not exc.retryable or attempt >= self.retries:
                    if attempt:
                        exc.message = f"{exc.message} (after {attempt + 1} attempts)"
                    raise
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt) * (0.5 + random.random() / 2)
                log.debug("retrying in %.2fs after: %s", delay, exc.message)
                attempt += 1
                await asyncio.sleep(delay)

    async def _invoke_once(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, str]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # A BytesIO is sent in chunks, with a Content-Length; raw bytes over 1 MiB would make
        # aiohttp warn (ResourceWarning) that they may block the event loop.
        try:
            async with self.session.post(
                self.invoke_url, data=io.BytesIO(body), headers=headers, timeout=timeout
            ) as resp:
                data = await resp.read()
                if resp.status < 300:
                    return data, resp.headers.get("Content-Type", "")
                raise _error_from(resp.status, resp.headers, data)
        except TimeoutError as exc:
            raise InvocationError(
                f"no answer within {self.timeout:g}s (timeout)",
                code="Timeout",
                status=None,
                retryable=True,
            ) from exc
        except aiohttp.ClientError as exc:
            raise InvocationError(
                f"cannot reach {self.base}: {exc}",
                code="ConnectionError",
                status=None,
                retryable=True,
            ) from exc

    async def get_json(self, url: str) -> dict[str, Any] | None:
        """``GET url`` as a JSON object, or ``None`` for any failure (used for optional lookups)."""
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    return None
                doc = json.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None


def _error_from(status: int, headers: Any, data: bytes) -> InvocationError:
    code = (headers.get("x-amzn-ErrorType") or "").split(":", 1)[0] or f"HTTP{status}"
    message = ""
    original: int | None = None
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = str(doc.get("Message") or doc.get("message") or "")
        raw = doc.get("OriginalStatusCode")
        original = raw if isinstance(raw, int) else None
    if not message:
        message = data.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    if code == "ModelError" or status == 424:
        retryable = original in _RETRY_ORIGINAL
    else:
        retryable = status in _RETRY_STATUS
    return InvocationError(f"{code}: {message}", code=code, status=status, retryable=retryable)
