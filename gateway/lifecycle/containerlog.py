"""Where a container's output goes: the gateway's log (prefixed), a file, and an in-memory tail."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import TextIO

logger = logging.getLogger("tandem.container")


class ContainerLog:
    """A line sink for one container; the tail explains a failed start without opening files."""

    def __init__(self, name: str, path: Path, *, tail: int) -> None:
        self.name = name
        self.path = path
        self._tail: deque[str] = deque(maxlen=tail)
        self._file: TextIO | None = None

    def open(self, *, truncate: bool = False) -> None:
        """Start (or, with ``truncate``, restart) the log file; restarts of a container append."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w" if truncate else "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def __call__(self, line: str) -> None:
        logger.info("%s | %s", self.name, line)
        self._tail.append(line)
        if self._file is not None:
            self._file.write(line + "\n")

    def tail_text(self) -> str:
        """The last lines, indented, for an error message; says so when there was no output."""
        if not self._tail:
            return f"  (no output; log file {self.path})"
        lines = "\n".join(f"  | {line}" for line in self._tail)
        return f"  last output (log file {self.path}):\n{lines}"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
