"""The root of every error Tandem raises on purpose.

It lives in the lowest package that the gateway imports, so that a spec error, a backend that
cannot start a container and a wire error all share it, and the CLI catches one class.
"""

from __future__ import annotations

from typing import ClassVar


class TandemError(Exception):
    """An error whose message is meant for a person: the CLI prints it without a stack trace."""

    #: The input (a spec, a flag, a config) is wrong, rather than something failing to run:
    #: the CLI exits 2 instead of 1.
    invalid_input: ClassVar[bool] = False
