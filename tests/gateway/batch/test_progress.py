"""Progress of a job: which tracker a job gets, what its lines and its bar show."""

from __future__ import annotations

import re
from io import StringIO

from rich.console import Console

from gateway.batch.progress import MB, BarTracker, PlainTracker, make_tracker

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_make_tracker_picks_plain_lines_or_a_bar() -> None:
    assert type(make_tracker(False)) is PlainTracker
    assert type(make_tracker(True)) is BarTracker


def test_plain_lines_come_once_per_interval_and_at_the_end() -> None:
    quiet, every = StringIO(), StringIO()
    for stream, interval in ((quiet, 3600.0), (every, 0.0)):
        tracker = PlainTracker(stream, interval=interval)
        tracker.start(4 * MB)
        tracker.advance(1000, MB)
        tracker.advance(1000, MB)
        tracker.file_failed(MB)
        tracker.close()
    assert len(quiet.getvalue().splitlines()) == 1  # only the closing line
    lines = every.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("batch: 1,000 records, 1.0/4.0 MB, ")
    assert re.search(r"[\d,]+ records/s, ETA \S+, 0 failed file\(s\)$", lines[0])
    assert lines[-1].startswith("batch: 2,000 records, 2.0/3.0 MB, ")
    assert lines[-1].endswith(", 1 failed file(s)")


def test_the_bar_shows_records_megabytes_rate_and_failures() -> None:
    out = StringIO()
    tracker = BarTracker(Console(file=out, force_terminal=True, width=160))
    tracker.start(4 * MB)
    tracker.advance(1234, MB)
    tracker.advance(1000, MB)
    tracker.file_failed(MB)
    tracker.close()
    shown = ANSI.sub("", out.getvalue())
    assert "2,234 records" in shown
    assert "2.0/3.0 MB" in shown
    assert re.search(r"[\d,]+ rec/s", shown)
    assert "1 failed" in shown
