"""Where a container's output goes: the gateway's log (prefixed), a file, and an in-memory tail.

Each line in the file starts with the moment it arrived (UTC, milliseconds), so that CloudWatch
Logs' API on the gateway (``gateway.logs``) can answer with events' timestamps and time ranges.
Beside the file, ``stream.json`` says what the container runs (its endpoint's variant), which its
folder's name does not always tell.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

logger = logging.getLogger("tandem.container")

#: What the supervisor knows of a container's log stream, beside its ``container.log``.
LABELS_FILE = "stream.json"
#: ``2026-01-05T10:12:03.123Z message``: a line of ``container.log``.
LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (.*)", re.DOTALL)


def stamp(seconds: float) -> str:
    """``seconds`` since the epoch as the time that begins a line of the file."""
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int(seconds * 1000) % 1000:03d}Z"


def parse(line: str) -> tuple[int | None, str]:
    """A line of the file: its time in epoch milliseconds (None if it has none) and its text."""
    found = LINE.fullmatch(line)
    if found is None:
        return None, line
    when = datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return round(when.timestamp() * 1000), found.group(2)


class ContainerLog:
    """A line sink for one container; the tail explains a failed start without opening files."""

    def __init__(
        self, name: str, path: Path, *, tail: int, labels: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.path = path
        self.labels = dict(labels or {})
        self._tail: deque[str] = deque(maxlen=tail)
        self._file: TextIO | None = None

    def open(self, *, truncate: bool = False) -> None:
        """Start (or, with ``truncate``, restart) the log file; restarts of a container append."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate and self.labels:
            (self.path.parent / LABELS_FILE).write_text(json.dumps(self.labels), encoding="utf-8")
        self._file = open(self.path, "w" if truncate else "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def __call__(self, line: str) -> None:
        logger.info("%s | %s", self.name, line)
        self._tail.append(line)
        if self._file is not None:
            self._file.write(f"{stamp(time.time())} {line}\n")

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
