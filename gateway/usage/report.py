"""Ledger rows summed into groups, with each group's share of the instances it ran on.

The attribution rule (docs/usage.md): each hour, a variant's instance time is shared between the
models it served, once by their model time and once by their resident memory x time; what no
model used (idle time) stays with the variant's own row (model ``""``). A price per
instance-hour turns both shares into money; without one the shares are still there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.usage.ledger import (
    COLUMNS,
    COPY_S,
    INSTANCE_S,
    MEMORY_BS,
    MODEL_S,
    Rows,
)

#: ``--by``: the names that make a group, in order.
GROUPINGS: Mapping[str, tuple[str, ...]] = {
    "endpoint": ("endpoint",),
    "variant": ("endpoint", "variant"),
    "component": ("endpoint", "variant", "component"),
    "model": ("endpoint", "variant", "component", "model"),
}
_NAMES = ("endpoint", "variant", "component", "model")
_DURATION = re.compile(r"^-?(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GIB_HOUR = 1024**3 * 3600.0

Price = Callable[[str, str], float | None]


class UsageQueryError(ValueError):
    """A query the ledger cannot answer; its message names the parameter and the rule."""


def parse_time(name: str, text: str, now: float) -> float:
    """``now``, a duration ago (``90m``, ``2h``, ``-1d``), epoch seconds or ISO 8601 (UTC
    unless it says otherwise)."""
    value = text.strip()
    if value == "now":
        return now
    if m := _DURATION.match(value):
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageQueryError(
            f"{name} {text!r} is not a time: give 'now', a duration ago such as 2h or 30m, "
            "epoch seconds, or ISO 8601 such as 2026-12-07T14:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def check_by(by: str, name: str = "by") -> tuple[str, ...]:
    found = GROUPINGS.get(by)
    if found is None:
        raise UsageQueryError(f"{name} {by!r} is not a grouping: use one of {', '.join(GROUPINGS)}")
    return found


def summarise(rows: Rows, by: str, *, price: Price, top: int | None = None) -> list[dict[str, Any]]:
    """One object per group: its names, the ledger's columns summed, the shares and costs."""
    names = check_by(by)
    if top is not None and top < 1:
        raise UsageQueryError(f"top {top} must be 1 or more")
    width = len(names)
    groups: dict[tuple[str, ...], list[float]] = {}
    # (hour, endpoint, variant) -> [instance s, model s, memory byte s]
    variant_hours: dict[tuple[int, str, str], list[float]] = {}
    for key, values in rows.items():
        total = variant_hours.setdefault(key[:3], [0.0, 0.0, 0.0])
        total[0] += values[INSTANCE_S]
        total[1] += values[MODEL_S]
        total[2] += values[MEMORY_BS]
    for key, values in rows.items():
        _hour, endpoint, variant, component, model = key
        instance_s, model_s, memory_bs = variant_hours[key[:3]]
        idle = model == ""
        by_compute = instance_s * (values[MODEL_S] / model_s if model_s else float(idle))
        by_memory = instance_s * (values[MEMORY_BS] / memory_bs if memory_bs else float(idle))
        cost = price(endpoint, variant)
        extra = [by_compute, by_memory]
        extra += [by_compute * cost, by_memory * cost] if cost is not None else [0.0, 0.0]
        names_of: tuple[str, ...] = (endpoint, variant, component, model)[:width]
        group = groups.setdefault(names_of, [0.0] * (len(COLUMNS) + 5))
        for i, v in enumerate([*values, *extra, 1.0 if cost is not None else 0.0]):
            group[i] += v
    all_model = sum(g[MODEL_S] for g in groups.values()) or 1.0
    all_memory = sum(g[MEMORY_BS] for g in groups.values()) or 1.0
    out = [
        _group(dict(zip(names, key, strict=True)), g, all_model, all_memory)
        for key, g in groups.items()
    ]
    out.sort(key=lambda g: (-g["invocations"], -g["model_seconds"], [g[n] or "" for n in names]))
    return out[:top] if top is not None else out


def _group(
    names: dict[str, str], g: list[float], all_model: float, all_memory: float
) -> dict[str, Any]:
    n = len(COLUMNS)
    priced = g[n + 4] > 0
    row: dict[str, Any] = {k: (v or None) for k, v in names.items() if k in _NAMES}
    for i, column in enumerate(COLUMNS):
        if column in ("memory_byte_seconds", "copy_seconds", "instance_seconds"):
            continue
        row[column] = int(g[i]) if column in _INTEGERS else round(g[i], 9)
    row["memory_gib_hours"] = round(g[MEMORY_BS] / _GIB_HOUR, 12)
    row["copy_hours"] = round(g[COPY_S] / 3600, 9)
    row["instance_hours"] = round(g[INSTANCE_S] / 3600, 9)
    row["compute_share"] = round(g[MODEL_S] / all_model, 9)
    row["memory_share"] = round(g[MEMORY_BS] / all_memory, 9)
    row["instance_hours_by_compute"] = round(g[n] / 3600, 9)
    row["instance_hours_by_memory"] = round(g[n + 1] / 3600, 9)
    row["cost_by_compute"] = round(g[n + 2] / 3600, 9) if priced else None
    row["cost_by_memory"] = round(g[n + 3] / 3600, 9) if priced else None
    return row


_INTEGERS = frozenset(
    ("invocations", "errors_4xx", "errors_5xx", "model_errors", "bytes_in", "bytes_out", "loads")
)

#: The columns of a summary after the group's names, in output order.
SUMMARY_COLUMNS = (
    *(c for c in COLUMNS if c not in ("memory_byte_seconds", "copy_seconds", "instance_seconds")),
    "memory_gib_hours",
    "copy_hours",
    "instance_hours",
    "compute_share",
    "memory_share",
    "instance_hours_by_compute",
    "instance_hours_by_memory",
    "cost_by_compute",
    "cost_by_memory",
)


def parse_prices(text: str | None) -> dict[str, float]:
    """``TANDEM_USAGE_PRICES``: ``type=price,...`` per instance-hour; ``*`` for any type."""
    prices: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or amount < 0:
            raise UsageQueryError(
                f"usage price {item.strip()!r} is not INSTANCE_TYPE=PRICE (a price per "
                "instance-hour, 0 or more; * for any type)"
            )
        prices[name.strip()] = amount
    return prices
