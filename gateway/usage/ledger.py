"""The metric store's raw events folded into hourly ledger rows (the flusher's thread only).

A row's key is (hour, endpoint, variant, component, model); ``""`` stands for "none" (an
endpoint without ``TargetModel``; a call to no inference component). Counts
come from the events themselves; the two time integrals (a model's resident bytes, a variant's
instances) are kept open between events and accrued up to ``now`` when the caller asks (the
service: every ``ACCRUE_EVERY`` seconds and before every read), cut at hour boundaries, so the
current hour reads right.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import add
from typing import Any

from gateway.cloudwatch.rollup import COPIES, COUNT, INVOCATION, LOADED, UNLOADED

HOUR = 3600
#: Seconds per group of invocations (a divisor of the hour): the top models' window step.
BUCKET = 10

#: The ledger's columns, in the table's order (docs/usage.md explains each).
COLUMNS = (
    "invocations",
    "errors_4xx",
    "errors_5xx",
    "model_errors",
    "model_seconds",
    "overhead_seconds",
    "bytes_in",
    "bytes_out",
    "loads",
    "load_seconds",
    "memory_byte_seconds",
    "copy_seconds",
    "instance_seconds",
)
(
    INVOCATIONS, ERRORS_4XX, ERRORS_5XX, MODEL_ERRORS, MODEL_S, OVERHEAD_S, BYTES_IN, BYTES_OUT,
    LOADS, LOAD_S, MEMORY_BS, COPY_S, INSTANCE_S,
) = range(len(COLUMNS))  # fmt: skip

#: (hour start, endpoint, variant, component, model)
RowKey = tuple[int, str, str, str, str]
Rows = dict[RowKey, list[float]]
#: A group's sums, as the first ``GROUP`` columns (the times in integer µs, summed exactly).
GROUP = BYTES_OUT + 1  # invocations .. bytes_out
#: (bucket start, endpoint, variant, model, inference component) -> the group's sums, and the
#: other events in order.
Split = tuple[dict[tuple[int, str, str, str | None, str | None], list[int]], list[tuple[Any, ...]]]


def hours(start: float, end: float) -> Iterator[tuple[int, float]]:
    """``[start, end)`` cut into (hour start, seconds in that hour)."""
    t = start
    while t < end:
        hour = int(t // HOUR * HOUR)
        stop = min(end, hour + HOUR)
        yield hour, stop - t
        t = stop


def merge(into: Rows, rows: Rows) -> None:
    """Add ``rows`` to ``into``, column by column."""
    for key, values in rows.items():
        have = into.get(key)
        into[key] = list(values) if have is None else list(map(add, have, values))


class Ledger:
    """What folding needs between flushes: the models resident and the variants' instances."""

    def __init__(self) -> None:
        #: (endpoint, variant, model) -> (each loaded copy's bytes, accrued up to)
        self._resident: dict[tuple[str, str, str], tuple[list[int], float]] = {}
        #: (endpoint, variant) -> (instances, accrued up to)
        self._instances: dict[tuple[str, str], tuple[int, float]] = {}
        #: (endpoint, variant, component) -> (copies, accrued up to)
        self._copies: dict[tuple[str, str, str], tuple[int, float]] = {}

    def fold(
        self,
        events: Iterable[tuple[Any, ...]],
        now: float,
        split: Split | None = None,
        *,
        accrue: bool = True,
    ) -> Rows:
        """The rows ``events`` add and, with ``accrue``, the open integrals accrued up to
        ``now`` (a row per resident model: a caller may do it less often than it folds; what
        is accrued later is cut at the same hours); ``split`` is ``split_events(events)`` when
        the caller made it already (the top models share it)."""
        invocations, others = split if split is not None else split_events(events)
        rows: Rows = {}
        for (start, endpoint, variant, model, component), sums in invocations.items():
            row = _row(rows, start // HOUR * HOUR, endpoint, variant, model or "", component)
            n, e4, e5, me, model_us, overhead_us, size_in, size_out = sums
            row[INVOCATIONS] += n
            row[ERRORS_4XX] += e4
            row[ERRORS_5XX] += e5
            row[MODEL_ERRORS] += me
            row[MODEL_S] += model_us / 1e6
            row[OVERHEAD_S] += overhead_us / 1e6
            row[BYTES_IN] += size_in
            row[BYTES_OUT] += size_out
        for event in others:
            kind = event[0]
            if kind == LOADED:
                self._loaded(rows, event)
            elif kind == UNLOADED:
                _, t, endpoint, variant, model, *_ = event
                self._unloaded(rows, (endpoint, variant, model), t)
            elif kind == COUNT:
                _, t, endpoint, variant, count = event
                key = (endpoint, variant)
                self._accrue_instances(rows, key, t)
                self._instances[key] = (int(count), t)
            elif kind == COPIES and len(event) > 5:
                _, t, component, count, endpoint, variant = event[:6]
                ckey = (endpoint, variant, component)
                self._accrue_copies(rows, ckey, t)
                self._copies[ckey] = (int(count), t)
        if accrue:
            for mkey in list(self._resident):
                self._accrue_memory(rows, mkey, now)
            for ikey in list(self._instances):
                self._accrue_instances(rows, ikey, now)
            for ckey in list(self._copies):
                self._accrue_copies(rows, ckey, now)
        return rows

    def _loaded(self, rows: Rows, event: tuple[Any, ...]) -> None:
        _, t, endpoint, variant, model, download_us, load_us = event[:7]
        size = event[8] if len(event) > 8 else None
        row = _row(rows, int(t // HOUR * HOUR), endpoint, variant, model)
        row[LOADS] += 1
        row[LOAD_S] += ((download_us or 0) + (load_us or 0)) / 1e6
        key = (endpoint, variant, model)
        self._accrue_memory(rows, key, t)
        copies, _ = self._resident.get(key, ([], t))
        copies.append(int(size or 0))  # a copy on each instance that loaded it
        self._resident[key] = (copies, t)

    def _unloaded(self, rows: Rows, key: tuple[str, str, str], t: float) -> None:
        self._accrue_memory(rows, key, t)
        found = self._resident.get(key)
        if found is None:
            return
        found[0].pop(0)
        if not found[0]:
            del self._resident[key]

    def _accrue_memory(self, rows: Rows, key: tuple[str, str, str], t: float) -> None:
        found = self._resident.get(key)
        if found is None:
            return
        copies, since = found
        size = sum(copies)
        for hour, seconds in hours(since, t):
            _row(rows, hour, *key)[MEMORY_BS] += size * seconds
        self._resident[key] = (copies, max(since, t))

    def _accrue_copies(self, rows: Rows, key: tuple[str, str, str], t: float) -> None:
        endpoint, variant, component = key
        for hour, seconds, count in _accrued(self._copies, key, t):
            _row(rows, hour, endpoint, variant, "", component)[COPY_S] += count * seconds

    def _accrue_instances(self, rows: Rows, key: tuple[str, str], t: float) -> None:
        found = self._instances.get(key)
        if found is None:
            return
        count, since = found
        for hour, seconds in hours(since, t):
            _row(rows, hour, key[0], key[1], "")[INSTANCE_S] += count * seconds
        self._instances[key] = (count, max(since, t))


def _accrued(
    open_: dict[Any, tuple[int, float]], key: Any, t: float
) -> Iterator[tuple[int, float, int]]:
    """(hour, seconds, count) of an open count from when it was last accrued up to ``t``."""
    found = open_.get(key)
    if found is None:
        return
    count, since = found
    for hour, seconds in hours(since, t):
        yield hour, seconds, count
    open_[key] = (count, max(since, t))


def split_events(events: Iterable[tuple[Any, ...]]) -> Split:
    """The invocations summed per (``BUCKET`` start, endpoint, variant, model, component), and
    the rest in order: one pass, a few additions per request into its group's counters (the
    ledger's rows and the top models are both made of the groups, a few hundred a flush)."""
    groups: dict[tuple[int, str, str, str | None, str | None], list[int]] = {}
    others: list[tuple[Any, ...]] = []
    for event in events:
        if event[0] != INVOCATION:
            others.append(event)
            continue
        if len(event) > 12:
            _k, t, endpoint, variant, model, status, latency_us, overhead_us, size_in, size_out, \
                code, own_us, component = event  # fmt: skip
        else:
            _k, t, endpoint, variant, model, status, latency_us, overhead_us, size_in, size_out, \
                code, own_us = event  # fmt: skip
            component = None
        key = (int(t // BUCKET) * BUCKET, endpoint, variant, model, component)
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0] * GROUP
        sums[INVOCATIONS] += 1
        if status != "2xx":
            # As CloudWatch counts them (rollup.py): a model error is classed by its
            # container's status.
            if status == "4xx" or (status == "model-error" and code is not None and code < 500):
                sums[ERRORS_4XX] += 1
            else:
                sums[ERRORS_5XX] += 1
            if status == "model-error":
                sums[MODEL_ERRORS] += 1
        # The model time is the containers' own; the hop to them counts as overhead
        # (docs/usage.md).
        if own_us is not None:
            sums[MODEL_S] += own_us
            if latency_us:
                sums[OVERHEAD_S] += latency_us - own_us
        elif latency_us:
            sums[MODEL_S] += latency_us
        if overhead_us:
            sums[OVERHEAD_S] += overhead_us
        sums[BYTES_IN] += size_in
        sums[BYTES_OUT] += size_out
    return groups, others


def _row(
    rows: Rows, hour: int, endpoint: str, variant: str, model: str, component: str | None = None
) -> list[float]:
    key = (hour, endpoint, variant, component or "", model)
    row = rows.get(key)
    if row is None:
        row = rows[key] = [0.0] * len(COLUMNS)
    return row
