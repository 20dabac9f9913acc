"""Scheduled actions' expressions, as Application Auto Scaling reads them.

``at(yyyy-mm-ddThh:mm:ss)`` runs once; ``rate(value unit)`` every ``value`` minutes, hours or
days from the action's start; ``cron(minutes hours day-of-month month day-of-week year)``, with
``*``, ``?``, lists, ranges, steps and month and weekday names, in the action's time zone.
``L``, ``W`` and ``#`` are refused by name rather than misread. ``next_run`` answers when it
runs next after a time, so the evaluator only compares numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+)\s+(minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
#: (name, low, high, names) per cron field; day-of-week 1-7 is SUN-SAT as on AWS.
_FIELDS = [
    ("minutes", 0, 59, []), ("hours", 0, 23, []), ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS), ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, []),
]  # fmt: skip
#: How far ahead a cron expression is searched for its next time.
_HORIZON_DAYS = 5 * 366


class ScheduleError(ValueError):
    """The expression is not one of the three forms (the message says what is wrong)."""


@dataclass(frozen=True)
class Schedule:
    kind: str  # at | rate | cron
    at: float = 0.0
    every: int = 0
    fields: tuple[frozenset[int] | None, ...] = ()
    zone: str = "UTC"

    def next_run(self, after: float, start: float) -> float | None:
        """The first time strictly after ``after`` (not before ``start``) it runs; None: never."""
        if self.kind == "at":
            return self.at if self.at > after else None
        if self.kind == "rate":
            if after < start:
                return start
            return start + (int((after - start) // self.every) + 1) * self.every
        return self._next_cron(max(after, start - 1))

    def _next_cron(self, after: float) -> float | None:
        zone = ZoneInfo(self.zone)
        minutes, hours, dom, months, dow, years = self.fields
        here = datetime.fromtimestamp(after, zone).replace(second=0, microsecond=0)
        day = here.replace(hour=0, minute=0)
        for _ in range(_HORIZON_DAYS):
            weekday = day.isoweekday() % 7 + 1  # SUN=1 .. SAT=7
            if (
                (years is None or day.year in years)
                and (months is None or day.month in months)
                and (dom is None or day.day in dom)
                and (dow is None or weekday in dow)
            ):
                for hour in sorted(hours) if hours is not None else range(24):
                    for minute in sorted(minutes) if minutes is not None else range(60):
                        when = day.replace(hour=hour, minute=minute)
                        if when.timestamp() > after:
                            return when.timestamp()
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        return None


def parse(expression: str, timezone: str | None = None) -> Schedule:
    zone = timezone or "UTC"
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Timezone {zone!r} is not a time zone name (Europe/Paris).") from None
    text = expression.strip()
    if match := _AT.match(text):
        try:
            when = datetime.fromisoformat(match[1])
        except ValueError as exc:
            raise ScheduleError(f"{expression!r}: {exc}") from None
        return Schedule("at", at=when.replace(tzinfo=tz).timestamp(), zone=zone)
    if match := _RATE.match(text):
        value, unit = int(match[1]), match[2].rstrip("s")
        if value < 1:
            raise ScheduleError(f"{expression!r}: the rate must be at least 1 {unit}.")
        return Schedule("rate", every=value * _UNIT[unit], zone=zone)
    if match := _CRON.match(text):
        return Schedule("cron", fields=_cron_fields(match[1], expression), zone=zone)
    raise ScheduleError(
        f"{expression!r} is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or "
        "cron(minutes hours day-of-month month day-of-week year)."
    )


def _cron_fields(body: str, expression: str) -> tuple[frozenset[int] | None, ...]:
    parts = body.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r}: a cron expression has 6 fields (minutes hours day-of-month month "
            f"day-of-week year), this one has {len(parts)}."
        )
    if "?" not in (parts[2], parts[4]):
        raise ScheduleError(
            f"{expression!r}: one of day-of-month and day-of-week must be '?' (as on AWS)."
        )
    return tuple(_field(part, *spec, expression) for part, spec in zip(parts, _FIELDS, strict=True))


def _field(
    text: str, name: str, low: int, high: int, names: list[str], expression: str
) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    if any(c in text for c in "LW#"):
        raise ScheduleError(f"{expression!r}: Tandem does not read L, W or # ({name} {text!r}).")
    out: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        first, last = low, high
        if span != "*":
            a, _, b = span.partition("-")
            first = _value(a, name, low, high, names, expression)
            last = first
            if b:
                last = _value(b, name, low, high, names, expression)
            elif step_text:
                last = high
        step = _value(step_text, name, 1, high, [], expression) if step_text else 1
        if first > last:
            raise ScheduleError(f"{expression!r}: the range {span!r} of {name} runs backwards.")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _value(text: str, name: str, low: int, high: int, names: list[str], expression: str) -> int:
    upper = text.upper()
    number = names.index(upper) + 1 if upper in names else None  # JAN=1, SUN=1
    if number is None:
        if not text.isdigit():
            raise ScheduleError(f"{expression!r}: {text!r} is not a value of {name}.")
        number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{expression!r}: {name} must be within {low}-{high}, not {text!r}.")
    return number


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
