"""A streamed answer (InvokeEndpointWithResponseStream) while it streams: its head and its parts.

``Dispatcher.stream`` makes one once the last step's head arrived; the edge frames what
``forward`` emits. A break after the head cannot be an error answer any more: it is raised as
``StreamFailure``, which the edge turns into the event stream's error event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.errors import ApiError, ModelError, truncate
from gateway.live import ContainerRuntime
from gateway.serving.failures import timed_out, where
from gateway.upstream.streaming import StreamBroken, StreamedResponse


class StreamFailure(Exception):
    """A streamed answer broke after its head was sent: ``error`` is what it ended with and
    ``code`` the event stream's ``ErrorCode`` (``ModelInvocationTimeExceeded``,
    ``StreamBroken``)."""

    def __init__(self, error: ApiError, code: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = code


class Streamed:
    """The last step's answer, while it streams: its head, then ``forward`` for its parts."""

    def __init__(
        self,
        answer: StreamedResponse,
        custom_attributes: str | None,
        container: ContainerRuntime,
        step: tuple[int, int] | None,
        ends: float,
        log_stream: Callable[[ContainerRuntime], str | None],
    ) -> None:
        self.content_type = answer.header("Content-Type")
        self.custom_attributes = custom_attributes
        self.container = container
        self._answer = answer
        self._step = step
        self._ends = ends
        self._log_stream = log_stream

    async def forward(self, emit: Callable[[bytes], Awaitable[None]]) -> None:
        """``emit`` each part as it arrives, within the endpoint's timeout; raises
        ``StreamFailure`` when the container breaks off or runs out of time."""
        container, step = self.container, self._step
        try:
            async with asyncio.timeout_at(self._ends):
                async for chunk in self._answer.chunks():
                    await emit(chunk)
        except TimeoutError:
            error = timed_out(container, step, self._log_stream(container))
            raise StreamFailure(error, "ModelInvocationTimeExceeded") from None
        except StreamBroken as exc:
            message = (
                f"{where(container, step)} closed its streamed answer before it ended ({exc})."
            )
            broken = ModelError(
                message,
                original_status=0,
                original_message=truncate(str(exc)),
                log_stream=self._log_stream(container),
            )
            raise StreamFailure(broken, "StreamBroken") from None
