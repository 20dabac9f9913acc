"""CloudWatch's alarm operations: PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState,
DescribeAlarmHistory, over ``Alarms`` (``alarms.py``).

``AlarmApi.attach`` adds them to a ``MetricApi``'s operations, so the three wire protocols of
``route.py`` serve them like the metric operations. Every check runs before the one write: a
refused call stores nothing. Metric math alarms, anomaly detection and composite alarms are
refused by name.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from gateway.cloudwatch import checks
from gateway.cloudwatch.alarms import COMPARE, Alarms
from gateway.cloudwatch.api import MetricApi
from gateway.cloudwatch.errors import (
    CloudWatchError,
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
)

Params = Mapping[str, Any]
MAX_ACTIONS = 5
MAX_RECORDS = 100
TREAT = ("breaching", "notBreaching", "ignore", "missing")
_TIMES = ("AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp",
          "StateTransitionedTimestamp")  # fmt: skip
_INTERNAL = ("LastValue",)


class ResourceNotFound(CloudWatchError):
    code = "ResourceNotFound"
    status = 404
    shape = "ResourceNotFound"


class InvalidFormat(CloudWatchError):
    code = "InvalidFormat"
    shape = "InvalidFormatFault"


class LimitExceededFault(CloudWatchError):
    code = "LimitExceeded"
    shape = "LimitExceededFault"
    fault: ClassVar[str] = "Sender"


class AlarmApi:
    def __init__(self, alarms: Alarms, *, region: str, account: str) -> None:
        self.alarms, self.region, self.account = alarms, region, account
        self.operations: dict[str, Callable[[Params], dict[str, Any]]] = {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "DeleteAlarms": self.delete_alarms,
            "SetAlarmState": self.set_alarm_state,
            "DescribeAlarmHistory": self.describe_alarm_history,
        }

    def attach(self, api: MetricApi) -> None:
        api.operations.update(self.operations)

    def put_metric_alarm(self, params: Params) -> dict[str, Any]:
        name = str(checks.required(params, "AlarmName"))
        if params.get("Metrics") or params.get("ThresholdMetricId"):
            raise InvalidParameterValue(
                "The parameter Metrics (metric math and anomaly detection alarms) is not served "
                "by Tandem: give MetricName, Namespace and a Statistic."
            )
        checks.required(params, "MetricName")
        checks.required(params, "Namespace")
        checks.dimensions(params.get("Dimensions"), "Dimensions", limit=30)
        if bool(params.get("Statistic")) == bool(params.get("ExtendedStatistic")):
            raise InvalidParameterCombination(
                "Exactly one of the parameters Statistic and ExtendedStatistic must be given."
            )
        checks.statistic(params.get("Statistic") or params["ExtendedStatistic"], "Statistic")
        period = checks.period(checks.required(params, "Period"))
        if period < 60 and period not in (10, 30):
            raise InvalidParameterValue("The parameter Period must be 10, 30 or a multiple of 60.")
        count = int(checks.required(params, "EvaluationPeriods"))
        least = int(params.get("DatapointsToAlarm") or count)
        if count < 1 or not 1 <= least <= count or period * count > 7 * 86400:
            raise InvalidParameterValue(
                "The parameters EvaluationPeriods and DatapointsToAlarm must be at least 1, "
                "DatapointsToAlarm at most EvaluationPeriods, Period x EvaluationPeriods at most "
                "7 days."
            )
        if params.get("Threshold") is None:
            raise checks.MissingParameter("The parameter Threshold is required.")
        operator = checks.required(params, "ComparisonOperator")
        if operator not in COMPARE:
            raise InvalidParameterValue(
                f"The value {operator} for parameter ComparisonOperator is not served by Tandem: "
                f"use one of [{', '.join(COMPARE)}]."
            )
        if params.get("TreatMissingData", "missing") not in TREAT:
            raise InvalidParameterValue(f"The parameter TreatMissingData must be one of {TREAT}.")
        for member in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            if len(params.get(member) or []) > MAX_ACTIONS:
                raise LimitExceededFault(f"The parameter {member} holds at most {MAX_ACTIONS}.")
        now = self.alarms.clock()
        old = self.alarms.store.alarms([name])
        body = {k: v for k, v in params.items() if k not in ("Tags",) and v is not None}
        body.update(
            AlarmArn=f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{name}",
            ActionsEnabled=params.get("ActionsEnabled", True),
            AlarmConfigurationUpdatedTimestamp=now,
            StateValue=old[0]["StateValue"] if old else "INSUFFICIENT_DATA",
            StateReason=old[0]["StateReason"] if old else "Unchecked: Initial alarm creation",
            StateUpdatedTimestamp=now,
            StateTransitionedTimestamp=old[0]["StateTransitionedTimestamp"] if old else now,
        )  # fmt: skip
        summary = f'Alarm "{name}" {"updated" if old else "created"}'
        self.alarms.store.put(body, ("ConfigurationUpdate", summary, {"type": summary}))
        return {}

    def describe_alarms(self, params: Params) -> dict[str, Any]:
        names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
        if names and prefix:
            raise InvalidParameterCombination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive."
            )
        found = self.alarms.store.alarms(list(names) if names else None)
        for derived in self.alarms.derived:
            found += [a for a in derived() if not names or a["AlarmName"] in names]
        if prefix:
            found = [a for a in found if a["AlarmName"].startswith(prefix)]
        if params.get("StateValue"):
            found = [a for a in found if a["StateValue"] == params["StateValue"]]
        if params.get("ActionPrefix"):
            action = str(params["ActionPrefix"])
            found = [
                a for a in found if any(x.startswith(action) for x in a.get("AlarmActions", []))
            ]
        if params.get("AlarmTypes") and "MetricAlarm" not in params["AlarmTypes"]:
            found = []
        page, token = _page(found, params)
        out: dict[str, Any] = {"MetricAlarms": [_shown(a) for a in page], "CompositeAlarms": []}
        if token:
            out["NextToken"] = token
        return out

    def delete_alarms(self, params: Params) -> dict[str, Any]:
        names = list(checks.required(params, "AlarmNames"))
        if len(names) > MAX_RECORDS:
            raise InvalidParameterValue(f"The parameter AlarmNames holds at most {MAX_RECORDS}.")
        have = {a["AlarmName"] for a in self.alarms.store.alarms(names)}
        missing = [n for n in names if n not in have]
        if missing:
            raise ResourceNotFound(f"The alarm(s) {', '.join(missing)[:500]} do not exist.")
        self.alarms.store.delete(names)
        return {}

    def set_alarm_state(self, params: Params) -> dict[str, Any]:
        name = str(checks.required(params, "AlarmName"))
        state = str(checks.required(params, "StateValue"))
        reason = str(checks.required(params, "StateReason"))
        data = None
        if params.get("StateReasonData"):
            try:
                data = json.loads(params["StateReasonData"])
            except ValueError:
                raise InvalidFormat("The parameter StateReasonData is not valid JSON.") from None
        found = self.alarms.store.alarms([name])
        if not found:
            raise ResourceNotFound(f"The alarm {name[:255]} does not exist.")
        self.alarms.change(found[0], state, reason, data)
        if state == "ALARM":
            self.alarms.force(name)
        return {}

    def describe_alarm_history(self, params: Params) -> dict[str, Any]:
        start = params["StartDate"].timestamp() if params.get("StartDate") else 0.0
        end = params["EndDate"].timestamp() if params.get("EndDate") else float("inf")
        rows = self.alarms.store.history(params.get("AlarmName"), params.get("HistoryItemType"),
                                         start, end)  # fmt: skip
        if params.get("ScanBy") == "TimestampAscending":
            rows.reverse()
        if params.get("AlarmTypes") and "MetricAlarm" not in params["AlarmTypes"]:
            rows = []
        items = [
            {"AlarmName": n, "AlarmType": "MetricAlarm", "Timestamp": _time(ts),
             "HistoryItemType": kind, "HistorySummary": summary, "HistoryData": data}
            for n, ts, kind, summary, data in rows
        ]  # fmt: skip
        page, token = _page(items, params)
        return {"AlarmHistoryItems": page, **({"NextToken": token} if token else {})}


def _shown(alarm: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in alarm.items() if k not in _INTERNAL}
    for key in _TIMES:
        if key in out:
            out[key] = _time(out[key])
    return out


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _page(items: list[Any], params: Params) -> tuple[list[Any], str | None]:
    size = int(params.get("MaxRecords") or MAX_RECORDS)
    if not 1 <= size <= MAX_RECORDS:
        raise InvalidParameterValue(f"The parameter MaxRecords must be within 1-{MAX_RECORDS}.")
    start = 0
    if params.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidNextToken("The NextToken is not one this gateway gave.") from None
    token = None
    if start + size < len(items):
        token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return items[start : start + size], token
