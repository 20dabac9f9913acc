"""One way for every command to fail: a message on stderr and an exit code scripts can test.

Bad input (a spec, a flag, a config) exits 2; anything else Tandem raised, or the system refused
(a port, a file), exits 1; an interrupt exits 130, as a shell reports Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import typer

from pipelines.errors import TandemError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"tandem: {message}\n")
    raise typer.Exit(code)


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """Turn an error raised inside into its exit code and a one-line message, no stack trace."""
    try:
        yield
    except TandemError as exc:
        fail(EXIT_INVALID if exc.invalid_input else EXIT_FAILED, str(exc))
    except OSError as exc:
        fail(EXIT_FAILED, str(exc))
