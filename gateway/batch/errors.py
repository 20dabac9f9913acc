"""Errors of a batch job: one base class, so callers of the Python API catch one thing."""

from __future__ import annotations

from pipelines.errors import TandemError


class BatchError(TandemError):
    """Base of every batch error; ``str()`` is a message fit for a person."""

    invalid_input = True


class ConfigError(BatchError):
    """The settings cannot work; raised before any record is read."""


class EndpointStartError(BatchError):
    """The ``--spec`` endpoint could not start (bad spec, busy state folder, sick container)."""


class SourceError(BatchError):
    """An input cannot be listed or read, or an output location cannot be written."""


class RecordError(BatchError):
    """One record (or a run of records) failed; the file it belongs to fails with it."""

    def __init__(self, message: str, *, record: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.record = record
        self.line = line


class InvocationError(BatchError):
    """The endpoint answered an error, or could not be reached, after every retry."""

    def __init__(self, message: str, *, code: str, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
