"""CloudWatch metric alarms over the metric store: kept in the state database, evaluated at
their period, their actions handed to whoever listens (step scaling, deployment guardrails).

An alarm reads its metric through ``MetricApi.get_metric_statistics`` (what a dashboard reads):
the last ``EvaluationPeriods`` complete datapoints, ``DatapointsToAlarm`` of them breaching make
it ``ALARM``, fewer ``OK``, none at all ``INSUFFICIENT_DATA`` (``TreatMissingData`` decides what a
missing one counts as). Every change of state is in its history. While an alarm is in ``ALARM``
with actions enabled, its listeners are called at each of its evaluations, as CloudWatch
re-invokes an Application Auto Scaling policy every period. ``minute`` shortens the periods
(``autoscaling_minute``): a 60 s period lasts ``minute`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cloudwatch.api import MetricApi
from gateway.cloudwatch.tables import Tables
from gateway.periodic import cancel, every

log = logging.getLogger("tandem.cloudwatch")

_V1 = [
    "CREATE TABLE metric_alarms (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    """CREATE TABLE metric_alarm_history (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        name  TEXT NOT NULL,
        ts    REAL NOT NULL,
        type  TEXT NOT NULL,
        summary TEXT NOT NULL,
        data  TEXT NOT NULL
    )""",
    "CREATE INDEX metric_alarm_history_by_name ON metric_alarm_history (name, ts)",
]
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1)]
_PERIODS = (1, 5, 10, 30)
#: How long an alarm's history is kept, as CloudWatch keeps it (two weeks).
HISTORY_SECONDS = 14 * 86400
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
#: Called with the alarm (as DescribeAlarms shows it) and its latest value.
Listener = Callable[[dict[str, Any], float | None], Awaitable[None]]


class AlarmStore(Tables):
    def __init__(self, path: Path) -> None:
        super().__init__(path, meta="alarm_meta", migrations=MIGRATIONS)

    def put(self, body: dict[str, Any], history: tuple[str, str, dict[str, Any]] | None) -> None:
        """Store the alarm and, in the same transaction, one history item (type, summary, data)."""
        with self.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO metric_alarms (name, body) VALUES (?, ?)",
                (body["AlarmName"], json.dumps(body)),
            )
            if history is not None:
                kind, summary, data = history
                conn.execute(
                    "DELETE FROM metric_alarm_history WHERE ts < ?",
                    (body["StateUpdatedTimestamp"] - HISTORY_SECONDS,),
                )
                conn.execute(
                    "INSERT INTO metric_alarm_history (name, ts, type, summary, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (body["AlarmName"], body["StateUpdatedTimestamp"], kind, summary,
                     json.dumps(data)),
                )  # fmt: skip

    def alarms(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT body FROM metric_alarms", list(names or [])
        if names is not None:
            sql += f" WHERE name IN ({', '.join('?' for _ in names)})"
        with self.tx(write=False) as conn:
            rows = conn.execute(sql + " ORDER BY name", args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete(self, names: list[str]) -> None:
        with self.tx() as conn:
            for name in names:
                conn.execute("DELETE FROM metric_alarms WHERE name = ?", (name,))
                conn.execute("DELETE FROM metric_alarm_history WHERE name = ?", (name,))

    def history(self, name: str | None, kind: str | None, start: float, end: float) -> list[Any]:
        sql = "SELECT name, ts, type, summary, data FROM metric_alarm_history "
        sql += "WHERE ts >= ? AND ts < ?"
        args: list[Any] = [start, end]
        for column, value in (("name", name), ("type", kind)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        with self.tx(write=False) as conn:
            return conn.execute(sql + " ORDER BY ts DESC, id DESC", args).fetchall()


class Alarms:
    """The alarms, their evaluation and its background task."""

    def __init__(
        self, metrics: MetricApi, path: Path, *, interval: float = 10.0, minute: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.metrics, self.store = metrics, AlarmStore(path)
        self.interval, self.minute, self.clock = interval, minute, clock
        self.listeners: list[Listener] = []
        #: Alarms kept elsewhere that DescribeAlarms shows too (target tracking's, read-only).
        self.derived: list[Callable[[], list[dict[str, Any]]]] = []
        self._due: dict[str, float] = {}
        self._forced: deque[str] = deque()  # SetAlarmState to ALARM: act at the next tick
        self._task: asyncio.Task[None] | None = None

    def period(self, alarm: dict[str, Any]) -> int:
        """The alarm's period on this gateway's clock (a period the metric store keeps)."""
        seconds = alarm["Period"] * self.minute / 60
        if seconds >= 60:
            return int(seconds // 60 * 60)
        return max(p for p in _PERIODS if p <= max(seconds, 1))

    def change(
        self, alarm: dict[str, Any], state: str, reason: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Move ``alarm`` to ``state`` (stored with its history item when it changes)."""
        old = alarm.get("StateValue", "INSUFFICIENT_DATA")
        now = self.clock()
        alarm = {**alarm, "StateValue": state, "StateReason": reason, "StateUpdatedTimestamp": now}
        if data is not None:
            alarm["StateReasonData"] = json.dumps(data)
        item = None
        if old != state:
            alarm["StateTransitionedTimestamp"] = now
            summary = f"Alarm updated from {old} to {state}"
            item = ("StateUpdate", summary, {"oldState": {"stateValue": old},
                                             "newState": {"stateValue": state,
                                                          "stateReason": reason}})  # fmt: skip
        self.store.put(alarm, item)
        return alarm

    def force(self, name: str) -> None:
        self._forced.append(name)

    def evaluate(self, now: float) -> list[tuple[dict[str, Any], float | None]]:
        """Evaluate the alarms that are due; those in ALARM with actions, and their values."""
        fire = []
        forced = set()
        while self._forced:
            forced.add(self._forced.popleft())
        for alarm in self.store.alarms():
            name = alarm["AlarmName"]
            value = None
            if name in forced:
                fire.append((alarm, alarm.get("LastValue")))
            if now < self._due.get(name, 0.0):
                continue
            period = self.period(alarm)
            self._due[name] = (now // period + 1) * period
            state, reason, value = self._state(alarm, now, period)
            if state is not None and (state != alarm["StateValue"] or value is not None):
                alarm = self.change({**alarm, "LastValue": value}, state, reason)
            if (
                alarm["StateValue"] == "ALARM"
                and alarm.get("ActionsEnabled", True)
                and (name not in forced)
            ):
                fire.append((alarm, value))
        return [(a, v) for a, v in fire if a.get("AlarmActions")]

    def _state(
        self, alarm: dict[str, Any], now: float, period: int
    ) -> tuple[str | None, str, float | None]:
        n = int(alarm["EvaluationPeriods"])
        m = int(alarm.get("DatapointsToAlarm") or n)
        end = int(now // period * period)
        start = end - n * period
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
        answer = self.metrics.get_metric_statistics(
            {
                "Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions") or [],
                "StartTime": datetime.fromtimestamp(start, UTC),
                "EndTime": datetime.fromtimestamp(end, UTC), "Period": period,
                **({"Statistics": [stat]} if alarm.get("Statistic") else
                   {"ExtendedStatistics": [stat]}),
            }
        )  # fmt: skip
        found = {}
        for point in answer["Datapoints"]:
            raw = (
                point.get(stat) if alarm.get("Statistic") else point["ExtendedStatistics"].get(stat)
            )
            if raw is not None and math.isfinite(raw):
                found[int(point["Timestamp"].timestamp())] = float(raw)
        values = [found.get(ts) for ts in range(start, end, period)]
        present = [v for v in values if v is not None]
        treat = alarm.get("TreatMissingData") or "missing"
        if not present and treat in ("missing", "ignore"):
            if treat == "ignore":
                return None, "", None
            return "INSUFFICIENT_DATA", f"Insufficient Data: {n} datapoints were unknown.", None
        compare = COMPARE[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        breaching = sum(
            1
            if v is None and treat == "breaching"
            else int(v is not None and compare(v, threshold))
            for v in values
        )
        latest = present[-1] if present else None
        shown = ", ".join(f"{v:g}" for v in present[-5:])
        if breaching >= m:
            return (
                "ALARM",
                (
                    f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] "
                    f"crossed the threshold ({threshold:g}) ({alarm['ComparisonOperator']}, "
                    f"minimum {m} datapoints for OK -> ALARM transition)."
                ),
                latest,
            )
        return (
            "OK",
            (
                f"Threshold Crossed: {n - breaching} out of the last {n} datapoints [{shown}] were "
                f"not {alarm['ComparisonOperator']} the threshold ({threshold:g})."
            ),
            latest,
        )

    async def tick(self) -> None:
        fire = await asyncio.to_thread(self.evaluate, self.clock())
        for alarm, value in fire:
            for listener in list(self.listeners):
                try:
                    await listener(alarm, value)
                except Exception:
                    log.exception("an action of alarm %s failed", alarm["AlarmName"])

    async def start(self) -> None:
        if self._task is None:
            loop = every(self.interval, self.tick, log, "alarm evaluation failed", aligned=True)
            self._task = asyncio.create_task(loop, name="cloudwatch-alarms")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        self.store.close()
