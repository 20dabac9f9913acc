"""Other AWS services on the gateway's port: one mechanism for all of them.

SageMaker's control plane answers ``POST /``; CloudWatch Logs (JSON 1.1) and CloudWatch (JSON
1.0, CBOR, query) arrive on the same port, told apart only by their headers, their path or their
body's content type. Each such service is a list of Starlette routes placed before the control
plane's ``POST /``, each a ``ServiceRoute`` that matches only the requests ``claims`` says are its
own; everything else goes on to the control plane, which answers SageMaker's ``UnknownOperation``
for what no service claimed. A service adds routes; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Route
from starlette.types import Scope

#: Whether a request (its ASGI scope) is the service's own.
Claims = Callable[[Scope], bool]


class ServiceRoute(Route):
    """A ``POST`` route that matches only the requests ``claims(scope)`` says are its own."""

    def __init__(self, path: str, endpoint: Callable[..., Any], claims: Claims) -> None:
        super().__init__(path, endpoint, methods=["POST"])
        self._claims = claims

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL and not self._claims(scope):
            return Match.NONE, {}
        return match, child


def header(scope: Scope, name: bytes) -> str:
    """A request header's value from the ASGI scope (``name`` lower-cased), or ""."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def target_prefix(prefix: str) -> Claims:
    """Claims the requests whose ``X-Amz-Target`` is ``<prefix>.<Operation>`` (JSON protocols)."""
    start = f"{prefix}."
    return lambda scope: header(scope, b"x-amz-target").startswith(start)
