"""Input checks shared by the operations, with CloudWatch's own error codes and messages.

The wire layer has already given every member its modelled type (numbers, datetimes, lists); what
is left is what the model cannot say: required members, sets of values, periods, time ranges.
Parameter names in messages are the query protocol's (``MetricDataQueries.member.1.Id``), as
CloudWatch writes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.cloudwatch.errors import (
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from gateway.cloudwatch.recorder import Dims, dims

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,3}(?:\.\d{1,2})?)$")
#: Periods under a minute that high-resolution data may be read at.
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
#: A StartTime this much before the retention window is still accepted (clock skew, latency).
RETENTION_SLACK = 300.0


def required(params: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    value = params.get(name)
    if value is None or value == "" or value == []:
        raise MissingParameter(f"The parameter {prefix}{name} is required.")
    return value


def percentile(stat: str) -> float | None:
    """The percentile ``pNN.NN`` names (0-100), or None when ``stat`` is not one."""
    match = _PERCENTILE.match(stat)
    if match is None:
        return None
    value = float(match.group(1))
    return value if value <= 100 else None


def statistic(stat: str, name: str) -> str:
    """A statistic or ``pNN``; ``InvalidParameterValue`` otherwise."""
    if stat in STATISTICS or percentile(stat) is not None:
        return stat
    raise InvalidParameterValue(
        f"The value {stat[:100]} for parameter {name} is not a valid statistic: use one of "
        f"[{', '.join(STATISTICS)}] or a percentile such as p99 or p99.9."
    )


def period(value: int, name: str = "Period") -> int:
    if value < 1:
        raise InvalidParameterValue(f"The parameter {name} must be greater than 0.")
    if value < 60 and value not in HIGH_RESOLUTION_PERIODS:
        raise InvalidParameterValue(
            f"The parameter {name} must be 1, 5, 10, 30 or a multiple of 60 (got {value})."
        )
    if value >= 60 and value % 60:
        raise InvalidParameterValue(f"The parameter {name} must be a multiple of 60.")
    return value


def time_range(params: Mapping[str, Any], now: float, retention: float) -> tuple[float, float]:
    """StartTime and EndTime as epoch seconds: ordered, and not before what is kept."""
    start: datetime = required(params, "StartTime")
    end: datetime = required(params, "EndTime")
    first, last = start.timestamp(), end.timestamp()
    if first >= last:
        raise InvalidParameterValue(
            "The parameter StartTime must be less than the parameter EndTime."
        )
    if first < now - retention - RETENTION_SLACK:
        hours = retention / 3600
        raise InvalidParameterValue(
            f"The parameter StartTime is {(now - first) / 3600:.1f} hours ago; this gateway keeps "
            f"metrics for {hours:g} hours (TANDEM_METRIC_RETENTION_HOURS)."
        )
    return first, last


def origin(start: float, step: int) -> int:
    """Where the first bucket of a query starts: StartTime rounded down to its granularity."""
    grain = 60 if step % 60 == 0 else step
    return int(math.floor(start / grain) * grain)


def bucket_count(start: float, end: float, step: int) -> int:
    return math.ceil((end - origin(start, step)) / step)


def dimensions(items: list[Mapping[str, Any]] | None, prefix: str, *, limit: int) -> Dims:
    """``[{"Name":..., "Value":...}]`` as canonical dimensions (names unique, values given)."""
    items = items or []
    if len(items) > limit:
        raise InvalidParameterValue(
            f"The collection {prefix} must not have a size greater than {limit}."
        )
    seen: dict[str, str] = {}
    for i, item in enumerate(items, 1):
        name = str(required(item, "Name", f"{prefix}.member.{i}."))
        value = str(required(item, "Value", f"{prefix}.member.{i}."))
        if len(name) > 255 or len(value) > 1024:
            raise InvalidParameterValue(f"The parameter {prefix}.member.{i} is too long.")
        if name in seen:
            raise InvalidParameterCombination(
                f"The collection {prefix} must not have two dimensions named {name}."
            )
        seen[name] = value
    return dims(**seen)
