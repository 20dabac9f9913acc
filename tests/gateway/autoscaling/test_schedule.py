"""Schedule expressions: when each runs next, in its time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.autoscaling.schedule import ScheduleError, parse

UTC = ZoneInfo("UTC")


def ts(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_at_runs_once() -> None:
    schedule = parse("at(2030-01-02T03:04:05)")
    assert schedule.next_run(ts("2030-01-01T00:00:00"), 0) == ts("2030-01-02T03:04:05")
    assert schedule.next_run(ts("2030-01-02T03:04:05"), 0) is None


def test_rate_counts_from_the_start() -> None:
    schedule = parse("rate(2 hours)")
    start = ts("2030-01-01T00:00:00")
    assert schedule.next_run(start - 1, start) == start
    assert schedule.next_run(start + 1, start) == start + 7200
    assert schedule.next_run(start + 7200, start) == start + 14400


def test_cron_weekdays_in_a_time_zone() -> None:
    schedule = parse("cron(30 7 ? * MON-FRI *)", "Europe/Paris")
    friday = ts("2030-01-04T08:00:00", "Europe/Paris")  # a Friday, after 07:30
    assert schedule.next_run(friday, 0) == ts("2030-01-07T07:30:00", "Europe/Paris")  # Monday


def test_cron_steps_lists_and_days_of_month() -> None:
    schedule = parse("cron(0/15 9,17 1 JAN ? 2031)")
    after = ts("2030-06-01T00:00:00")
    assert schedule.next_run(after, 0) == ts("2031-01-01T09:00:00")
    assert schedule.next_run(ts("2031-01-01T09:00:00"), 0) == ts("2031-01-01T09:15:00")
    assert schedule.next_run(ts("2031-01-01T17:45:00"), 0) is None  # no 2032 in the year field


@pytest.mark.parametrize(
    ("expression", "word"),
    [("rate(0 minutes)", "at least 1"), ("cron(5-1 * * * ? *)", "backwards"),
     ("cron(* * * FOO ? *)", "FOO"), ("rate(5 weeks)", "rate(value unit)")],
)  # fmt: skip
def test_bad_expressions_say_what_is_wrong(expression: str, word: str) -> None:
    with pytest.raises(ScheduleError, match=word.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        parse("rate(1 day)", "Mars/Olympus")
