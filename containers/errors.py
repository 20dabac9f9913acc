"""One error base class for the container server: each error carries its short code and HTTP status.

Anything raised while serving a request is either one of these (rendered as JSON
``{"error": code, "message": text}`` by one handler in :mod:`containers.app`) or is translated into
one at the edge where it happened (user code -> :class:`UserCodeError`).
"""

from __future__ import annotations

from typing import ClassVar


class ContainerError(Exception):
    """Base: a failure a client should hear about with this ``status`` and ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ContainerError):
    """The request body could not be decoded, or the model rejected its shape or values."""

    status = 400
    code = "bad_input"


class CodecError(BadInput):
    """A body is not valid for its content type (the codecs raise this)."""

    code = "undecodable_body"


class BadRequest(ContainerError):
    """A management request (``/models``) is malformed."""

    status = 400
    code = "bad_request"


class UnsupportedContentType(ContainerError):
    status = 415
    code = "unsupported_content_type"


class UnsupportedAccept(ContainerError):
    status = 406
    code = "unsupported_accept"


class PayloadTooLarge(ContainerError):
    status = 413
    code = "payload_too_large"


class ModelNotFound(ContainerError):
    status = 404
    code = "model_not_found"


class ModelAlreadyLoaded(ContainerError):
    status = 409
    code = "model_already_loaded"


class InsufficientMemory(ContainerError):
    status = 507
    code = "insufficient_memory"


class ModelLoadError(ContainerError):
    """``model_fn`` (or the framework's default) failed, or the handler contract is broken."""

    status = 500
    code = "model_load_error"


class UserCodeError(ContainerError):
    """An exception escaped a handler function; the message names the function, not the trace."""

    status = 500
    code = "model_error"


class PredictionTimeout(ContainerError):
    status = 504
    code = "prediction_timeout"


class FrameworkUnavailable(ContainerError):
    """The framework's library is not installed in this environment."""

    code = "framework_unavailable"
