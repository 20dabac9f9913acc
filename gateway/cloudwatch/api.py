"""CloudWatch's metric operations over the metric store: inputs and outputs as plain dicts.

The wire layer (``gateway.cloudwatch.wire``) turns each protocol into these dicts (timestamps as
aware ``datetime``) and back. Reads flush the recorder first, so what was recorded can be read.
Limits are CloudWatch's: 1,440 datapoints per GetMetricStatistics, 500 queries and 100,800
datapoints per GetMetricData, 1,000 data per PutMetricData, 500 metrics per ListMetrics page.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.cloudwatch import checks
from gateway.cloudwatch.errors import (
    InvalidAction,
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    LimitExceeded,
)
from gateway.cloudwatch.mathexpr import ExpressionError, Series, evaluate
from gateway.cloudwatch.recorder import Dims, Rollup
from gateway.cloudwatch.service import MetricService
from gateway.cloudwatch.sketch import Stats

MAX_STATISTICS_POINTS = 1440
MAX_QUERIES = 500
MAX_DATA_POINTS = 100_800
MAX_PUT = 1000
MAX_VALUES = 150
LIST_PAGE = 500
#: Seconds a metric counts as recently active (ListMetrics' ``RecentlyActive=PT3H``).
RECENT = 3 * 3600
#: PutMetricData refuses timestamps further than this in the future, as CloudWatch does.
FUTURE = 2 * 3600
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")

Params = Mapping[str, Any]


class MetricApi:
    def __init__(self, service: MetricService) -> None:
        self.service = service
        self.operations: dict[str, Callable[[Params], dict[str, Any]]] = {
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
            "ListMetrics": self.list_metrics,
            "PutMetricData": self.put_metric_data,
        }

    def call(self, operation: str, params: Params) -> dict[str, Any]:
        """Run ``operation`` (blocking: the route calls it in a worker thread)."""
        handler = self.operations.get(operation)
        if handler is None:
            raise InvalidAction(
                f"The action {operation[:100]} is not valid for this web service: this gateway "
                f"serves {', '.join(self.operations)}."
            )
        return handler(params)

    # ---- reads ----------------------------------------------------------------------------------

    def get_metric_statistics(self, params: Params) -> dict[str, Any]:
        namespace = checks.required(params, "Namespace")
        name = checks.required(params, "MetricName")
        d = checks.dimensions(params.get("Dimensions"), "Dimensions", limit=30)
        step = checks.period(checks.required(params, "Period"))
        start, end = checks.time_range(params, self.service.clock(), self.service.retention)
        stats = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if bool(stats) == bool(extended):
            raise InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both."
            )
        for i, stat in enumerate(stats, 1):
            if stat not in checks.STATISTICS:
                raise InvalidParameterValue(
                    f"The parameter Statistics.member.{i} must be a value in the set "
                    f"[ {', '.join(checks.STATISTICS)} ]."
                )
        for i, stat in enumerate(extended, 1):
            if checks.percentile(stat) is None:
                checks.statistic(stat, f"ExtendedStatistics.member.{i}")
        wanted = checks.bucket_count(start, end, step)
        if wanted > MAX_STATISTICS_POINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {wanted} datapoints, which exceeds the limit of "
                f"{MAX_STATISTICS_POINTS}. You may reduce the datapoints requested by increasing "
                "Period, or decreasing the time range."
            )
        self.service.flush()
        datapoints = []
        for ts, (bucket, unit) in sorted(
            self._buckets(namespace, name, d, start, end, step, params.get("Unit")).items()
        ):
            point: dict[str, Any] = {"Timestamp": _time(ts), "Unit": unit}
            for stat in stats:
                point[stat] = _statistic(bucket, stat)
            if extended:
                values = {s: bucket.percentile(checks.percentile(s) or 0.0) for s in extended}
                point["ExtendedStatistics"] = {s: v for s, v in values.items() if v is not None}
            datapoints.append(point)
        return {"Label": name, "Datapoints": datapoints}

    def get_metric_data(self, params: Params) -> dict[str, Any]:
        queries = list(checks.required(params, "MetricDataQueries"))
        if len(queries) > MAX_QUERIES:
            raise LimitExceeded(
                f"The collection MetricDataQueries has {len(queries)} queries; at most "
                f"{MAX_QUERIES} are allowed."
            )
        start, end = checks.time_range(params, self.service.clock(), self.service.retention)
        if params.get("NextToken"):
            raise InvalidNextToken("The NextToken is not one this gateway gave (it gives none).")
        by_id: dict[str, tuple[int, Params]] = {}
        total = 0
        for i, query in enumerate(queries, 1):
            prefix = f"MetricDataQueries.member.{i}."
            qid = str(checks.required(query, "Id", prefix))
            if not _ID.match(qid):
                raise InvalidParameterValue(
                    f"The value {qid[:100]} for parameter {prefix}Id is invalid: it must start "
                    "with a lowercase letter and hold only letters, digits and underscores."
                )
            if qid in by_id:
                raise InvalidParameterValue(f"The Id {qid} is used by more than one query.")
            if (query.get("MetricStat") is None) == (query.get("Expression") is None):
                raise InvalidParameterCombination(
                    f"The query {prefix[:-1]} must have exactly one of MetricStat and Expression."
                )
            if query.get("MetricStat") is not None:
                total += self._check_stat(query["MetricStat"], prefix + "MetricStat.", start, end)
            by_id[qid] = (i, query)
        if total > MAX_DATA_POINTS:
            raise LimitExceeded(
                f"The queries ask for up to {total} datapoints; at most {MAX_DATA_POINTS} are "
                "allowed in one call: increase the periods or shorten the time range."
            )
        self.service.flush()
        results = self._results(by_id, start, end)
        descending = params.get("ScanBy", "TimestampDescending") != "TimestampAscending"
        out = []
        for qid, (_, query) in by_id.items():
            if query.get("ReturnData", True) is False:
                continue
            stamps = sorted(results[qid], reverse=descending)
            default = query["MetricStat"]["Metric"]["MetricName"] if "MetricStat" in query else qid
            out.append(
                {
                    "Id": qid,
                    "Label": query.get("Label") or default,
                    "Timestamps": [_time(ts) for ts in stamps],
                    "Values": [results[qid][ts] for ts in stamps],
                    "StatusCode": "Complete",
                    "Messages": [],
                }
            )
        return {"MetricDataResults": out, "Messages": []}

    def _check_stat(self, stat: Params, prefix: str, start: float, end: float) -> int:
        metric = checks.required(stat, "Metric", prefix)
        checks.required(metric, "Namespace", prefix + "Metric.")
        checks.required(metric, "MetricName", prefix + "Metric.")
        checks.dimensions(metric.get("Dimensions"), prefix + "Metric.Dimensions", limit=30)
        step = checks.period(checks.required(stat, "Period", prefix), prefix + "Period")
        checks.statistic(str(checks.required(stat, "Stat", prefix)), prefix + "Stat")
        return checks.bucket_count(start, end, step)

    def _results(
        self, by_id: Mapping[str, tuple[int, Params]], start: float, end: float
    ) -> dict[str, Series]:
        results: dict[str, Series] = {}
        busy: set[str] = set()

        def resolve(qid: str) -> Series:
            if qid in results:
                return results[qid]
            if qid not in by_id or qid in busy:
                raise ExpressionError(f"{qid} is not the Id of another query (or refers back)")
            index, query = by_id[qid]
            busy.add(qid)
            if "MetricStat" in query:
                results[qid] = self._stat_series(query["MetricStat"], start, end)
            else:
                try:
                    results[qid] = evaluate(query["Expression"], resolve, metrics)
                except (ExpressionError, ArithmeticError, ValueError) as exc:
                    raise InvalidParameterValue(
                        f"The parameter MetricDataQueries.member.{index}.Expression is invalid: "
                        f"{exc}."
                    ) from None
            busy.discard(qid)
            return results[qid]

        def metrics() -> list[Series]:
            return [resolve(q) for q, (_, query) in by_id.items() if "MetricStat" in query]

        for qid in by_id:
            resolve(qid)
        return results

    def _stat_series(self, stat: Params, start: float, end: float) -> Series:
        metric = stat["Metric"]
        d = checks.dimensions(metric.get("Dimensions"), "Dimensions", limit=30)
        buckets = self._buckets(
            metric["Namespace"], metric["MetricName"], d, start, end, stat["Period"],
            stat.get("Unit"),
        )  # fmt: skip
        out: Series = {}
        for ts, (bucket, _) in buckets.items():
            value = _statistic(bucket, stat["Stat"])
            if value is not None and math.isfinite(value):
                out[ts] = value
        return out

    def _buckets(
        self, namespace: str, name: str, d: Dims, start: float, end: float, step: int,
        unit: str | None,
    ) -> dict[int, tuple[Stats, str]]:  # fmt: skip
        """The series' datapoints merged into the query's buckets: start -> (stats, unit)."""
        series = self.service.store.find(namespace, name, d)
        if series is None:
            return {}
        first = checks.origin(start, step)
        out: dict[int, tuple[Stats, str]] = {}
        for point in self.service.store.points(series, first, math.ceil(end)):
            if unit is not None and point.unit != unit:
                continue
            ts = first + (point.ts - first) // step * step
            bucket = out.get(ts)
            if bucket is None:
                out[ts] = (point.stats, point.unit)
            else:
                bucket[0].merge(point.stats)
        return out

    def list_metrics(self, params: Params) -> dict[str, Any]:
        filters = []
        for i, item in enumerate(params.get("Dimensions") or [], 1):
            name = str(checks.required(item, "Name", f"Dimensions.member.{i}."))
            filters.append((name, item.get("Value")))
        if len(filters) > 10:
            raise InvalidParameterValue("The collection Dimensions must not have more than 10.")
        self.service.flush()
        recent = self.service.clock() - RECENT if params.get("RecentlyActive") else None
        found = []
        for s in self.service.store.series(params.get("Namespace"), params.get("MetricName")):
            have = dict(s.dims)
            if recent is not None and s.last < recent:
                continue
            if all(n in have and (v is None or have[n] == v) for n, v in filters):
                found.append(
                    {
                        "Namespace": s.namespace,
                        "MetricName": s.name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in s.dims],
                    }
                )
        offset = _offset(params.get("NextToken"))
        out: dict[str, Any] = {"Metrics": found[offset : offset + LIST_PAGE]}
        if offset + LIST_PAGE < len(found):
            out["NextToken"] = base64.urlsafe_b64encode(str(offset + LIST_PAGE).encode()).decode()
        return out

    # ---- writes ---------------------------------------------------------------------------------

    def put_metric_data(self, params: Params) -> dict[str, Any]:
        namespace = str(checks.required(params, "Namespace"))
        if namespace.startswith("AWS/") or namespace.startswith(":"):
            raise InvalidParameterValue(
                f"The value {namespace[:255]} for parameter Namespace is invalid: the AWS/ "
                "namespaces are reserved for AWS's own metrics."
            )
        data = list(checks.required(params, "MetricData"))
        if len(data) > MAX_PUT:
            raise InvalidParameterValue(
                f"The collection MetricData must not have a size greater than {MAX_PUT}."
            )
        now = self.service.clock()
        rollup: Rollup = {}
        for i, datum in enumerate(data, 1):
            prefix = f"MetricData.member.{i}."
            name = str(checks.required(datum, "MetricName", prefix))
            d = checks.dimensions(datum.get("Dimensions"), prefix + "Dimensions", limit=30)
            res = int(datum.get("StorageResolution") or 60)
            if res not in (1, 60):
                raise InvalidParameterValue(
                    f"The parameter {prefix}StorageResolution must be 1 or 60."
                )
            when = datum.get("Timestamp")
            ts = now if when is None else when.timestamp()
            if ts < now - self.service.retention or ts > now + FUTURE:
                raise InvalidParameterValue(
                    f"The parameter {prefix}Timestamp must be within the retention "
                    f"({self.service.retention / 3600:g} hours) and at most 2 hours ahead."
                )
            key = (namespace, name, d, str(datum.get("Unit") or "None"), res, int(ts // res * res))
            stats = rollup.setdefault(key, Stats())
            _datum_into(stats, datum, prefix)
        self.service.write(rollup)
        return {}


def _datum_into(stats: Stats, datum: Params, prefix: str) -> None:
    """One MetricDatum's value, values or statistic set, checked, added to ``stats``."""
    given = [k for k in ("Value", "StatisticValues", "Values") if datum.get(k) is not None]
    if len(given) > 1:
        raise InvalidParameterCombination(
            f"The parameters {prefix}{given[0]} and {prefix}{given[1]} are mutually exclusive."
        )
    if not given:
        raise checks.MissingParameter(f"The parameter {prefix}Value is required.")
    if "Value" in given:
        stats.add(_finite(datum["Value"], prefix + "Value"))
    elif "StatisticValues" in given:
        sv = datum["StatisticValues"]
        where = prefix + "StatisticValues."
        count, total, low, high = (
            _finite(checks.required(sv, k, where), where + k)
            for k in ("SampleCount", "Sum", "Minimum", "Maximum")
        )
        if count <= 0 or low > high:
            raise InvalidParameterValue(
                f"The parameter {where[:-1]} must have SampleCount > 0 and Minimum <= Maximum."
            )
        stats.add_set(count, total, low, high)
    else:
        values = list(datum["Values"])
        counts = list(datum.get("Counts") or [1.0] * len(values))
        if len(values) > MAX_VALUES or len(counts) != len(values):
            raise InvalidParameterValue(
                f"The parameter {prefix}Values must hold at most {MAX_VALUES} values, and "
                f"{prefix}Counts as many counts."
            )
        for j, (value, count) in enumerate(zip(values, counts, strict=True), 1):
            weight = _finite(count, f"{prefix}Counts.member.{j}")
            if weight > 0:
                stats.add(_finite(value, f"{prefix}Values.member.{j}"), weight)


def _finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or abs(number) > 2.0**360:
        raise InvalidParameterValue(f"The value {value} for parameter {name} is invalid.")
    return number


def _statistic(bucket: Stats, stat: str) -> float | None:
    if stat == "SampleCount":
        return bucket.count
    if stat == "Sum":
        return bucket.total
    if stat == "Average":
        return bucket.total / bucket.count if bucket.count else None
    if stat == "Minimum":
        return bucket.minimum
    if stat == "Maximum":
        return bucket.maximum
    return bucket.percentile(checks.percentile(stat) or 0.0)


def _time(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidNextToken("The NextToken is not one this gateway gave.") from None
