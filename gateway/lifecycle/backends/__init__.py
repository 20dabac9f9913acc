"""Backends run containers; chosen by name, imported only when chosen."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from gateway.lifecycle.backends.base import Backend, BackendError, ContainerHandle, LineSink

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

__all__ = ["BACKENDS", "Backend", "BackendError", "ContainerHandle", "LineSink", "create_backend"]

#: name -> "module:class"; a name mapped to None is known but not available yet.
BACKENDS: dict[str, str | None] = {
    "process": "gateway.lifecycle.backends.process:ProcessBackend",
    "docker": "gateway.lifecycle.backends.docker:DockerBackend",
    "external": "gateway.lifecycle.backends.external:ExternalBackend",
}


def create_backend(name: str, settings: GatewaySettings) -> Backend:
    """The backend called ``name``, configured from ``settings``."""
    if name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {name!r}; choose one of: {known}")
    target = BACKENDS[name]
    if target is None:
        raise BackendError(
            f"the {name!r} backend is not available yet; use the 'process' backend "
            "(--backend process), which runs each container as a local process"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r} cannot be loaded: {exc}") from exc
    backend: Backend = getattr(module, class_name)(settings)
    return backend
