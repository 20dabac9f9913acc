"""What one invocation is and how it is reported: the request, its result, the finished call.

The invocation core (``gateway.serving.invocation``) makes a ``Call`` per invocation and reports
it, once it is finished, to a ``Recorder``: the Prometheus series (``gateway.metrics``) today,
and whatever else must see every invocation (CloudWatch metrics, per-model usage) by adding a
recorder, without touching the edges. Bytes in, bytes out: nothing here decodes a payload.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import ApiError, ModelError
from gateway.live import Instance, LiveEndpoint


@dataclass(slots=True)
class InvocationRequest:
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    target_container: str | None = None
    inference_id: str | None = None


@dataclass(slots=True)
class InvocationResult:
    body: bytes
    content_type: str | None
    custom_attributes: str | None
    #: ``(hostname, seconds)`` for every step that answered, in order.
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def model_seconds(self) -> float:
        return sum(seconds for _, seconds in self.timings)


class ClientGone(Exception):
    """The client left (before its body arrived, or during a stream): nobody is left to answer."""


@dataclass(slots=True, eq=False)
class Call:
    """One invocation as it ran: what the caller answers with and what the recorders are told."""

    started: float
    request_id: str = ""
    live: LiveEndpoint | None = None
    #: The instance that took it; None when it failed before one was chosen (not recorded).
    instance: Instance | None = None
    request: InvocationRequest | None = None
    result: InvocationResult | None = None
    error: ApiError | None = None
    #: ``(hostname, seconds)`` of every step that answered, in order (also on failure).
    timings: list[tuple[str, float]] = field(default_factory=list)
    #: Each answered step's time by its container's own clock (``own_seconds``), None when it
    #: did not say, in the order of ``timings``.
    reported: list[float | None] = field(default_factory=list)
    #: Seconds from ``started`` to when it was recorded.
    total: float = 0.0
    #: The caller has answered already (a stream answers from inside the call).
    responded: bool = False
    #: The client left before its body arrived: no invocation to count.
    gone: bool = False

    @property
    def endpoint(self) -> str:
        return self.live.name if self.live is not None else ""

    @property
    def variant(self) -> str:
        return self.instance.variant if self.instance is not None else ""

    @property
    def instance_name(self) -> str:
        """The instance's deployment name (``name``, or ``name_variant_N``)."""
        return self.instance.deployment if self.instance is not None else ""

    @property
    def status_class(self) -> str:
        return status_class(self.error)

    @property
    def model_seconds(self) -> float:
        return sum(seconds for _, seconds in self.timings)

    @property
    def overhead_seconds(self) -> float:
        return max(self.total - self.model_seconds, 0.0)

    @property
    def container_seconds(self) -> float:
        """The usage ledger's model time: each step's time as its container reported it (never
        more than the gateway measured), else as the gateway measured it (the HTTP hop too)."""
        reported = self.reported
        total = 0.0
        for index, (_, seconds) in enumerate(self.timings):
            own = reported[index] if index < len(reported) else None
            total += seconds if own is None or own > seconds else own
        return total

    @property
    def target_model(self) -> str | None:
        return self.request.target_model if self.request is not None else None

    @property
    def bytes_in(self) -> int:
        return len(self.request.body) if self.request is not None else 0

    @property
    def bytes_out(self) -> int:
        return len(self.result.body) if self.result is not None else 0


def parse_server_timing(header: str | None) -> list[tuple[str, float]]:
    """``[(name, milliseconds)]`` from a ``Server-Timing`` header; unparsable parts are skipped."""
    steps: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    steps.append((name, float(value.strip().strip('"'))))
    return steps


def own_seconds(header: str | None) -> float | None:
    """The ``model`` duration of a container's ``Server-Timing`` answer header, in seconds: its
    own time on the request (``containers.invocation_metrics`` sends it); None without one."""
    for name, ms in parse_server_timing(header):
        if name == "model":
            return ms / 1000 if 0 <= ms < math.inf else None
    return None


def status_class(error: ApiError | None) -> str:
    """``2xx``, ``4xx`` or ``5xx`` as CloudWatch counts them: a model error is classed by the
    container's own status."""
    if error is None:
        return "2xx"
    status = error.status
    if isinstance(error, ModelError):
        status = error.original_status if 400 <= error.original_status < 500 else 500
    return "5xx" if status >= 500 else "4xx"


class Recorder(Protocol):
    """What every finished invocation is reported to, once (Prometheus, CloudWatch, usage)."""

    def admitted(self, call: Call) -> None:
        """``call`` was taken by ``call.instance`` and counted in its requests in flight."""

    def finished(self, call: Call) -> None: ...


class Recorders:
    """Several recorders as one, in order."""

    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self.recorders = list(recorders)

    def admitted(self, call: Call) -> None:
        for recorder in self.recorders:
            recorder.admitted(call)

    def finished(self, call: Call) -> None:
        for recorder in self.recorders:
            recorder.finished(call)
