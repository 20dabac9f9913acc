"""Progress of a job: a live bar on a terminal, plain periodic lines in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

MB = 1024 * 1024


class Tracker:
    """Counts what was done; subclasses show it. The base class shows nothing (the quiet mode)."""

    def __init__(self) -> None:
        self.total_bytes = 0
        self.done_bytes = 0
        self.records = 0
        self.failed_files = 0
        self.started = time.monotonic()

    def start(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.started = time.monotonic()

    def advance(self, records: int, nbytes: int) -> None:
        self.records += records
        self.done_bytes += nbytes
        self._show()

    def file_failed(self, nbytes_left: int) -> None:
        """A failed file stops counting: take its unread bytes out of the total so the ETA holds."""
        self.failed_files += 1
        self.total_bytes = max(self.done_bytes, self.total_bytes - nbytes_left)
        self._show()

    def close(self) -> None:
        pass

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if not self.done_bytes or elapsed <= 0:
            return None
        return (self.total_bytes - self.done_bytes) / (self.done_bytes / elapsed)

    def line(self) -> str:
        eta = self.eta()
        left = "?" if eta is None else f"{eta:.0f}s"
        return (
            f"batch: {self.records:,} records, "
            f"{self.done_bytes / MB:.1f}/{self.total_bytes / MB:.1f} MB, "
            f"{self.rate:,.0f} records/s, ETA {left}, {self.failed_files} failed file(s)"
        )

    def _show(self) -> None:
        pass


class PlainTracker(Tracker):
    """One line every ``interval`` seconds and one at the end, for logs that are not terminals."""

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = time.monotonic()

    def _show(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        print(self.line(), file=self.stream, flush=True)


class BarTracker(Tracker):
    """A rich bar over input bytes with records, MB, records/s, ETA and failures beside it."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TextColumn("{task.fields[records]:,} records"),
            TextColumn("{task.fields[mb]}"),
            TextColumn("{task.fields[rate]:,.0f} rec/s"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None

    def start(self, total_bytes: int) -> None:
        super().start(total_bytes)
        self._progress.start()
        self._task = self._progress.add_task(
            "batch", total=max(total_bytes, 1), records=0, mb="", rate=0.0, failed=0
        )

    def _show(self) -> None:
        if self._task is None:
            return
        self._progress.update(
            self._task,
            completed=self.done_bytes,
            total=max(self.total_bytes, 1),
            records=self.records,
            mb=f"{self.done_bytes / MB:.1f}/{self.total_bytes / MB:.1f} MB",
            rate=self.rate,
            failed=self.failed_files,
        )

    def close(self) -> None:
        self._show()
        self._progress.stop()


def make_tracker(progress: bool | None) -> Tracker:
    """``None`` picks a bar on a terminal and plain lines elsewhere."""
    if progress is None:
        progress = Console(stderr=True).is_terminal
    return BarTracker() if progress else PlainTracker()
