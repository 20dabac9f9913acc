"""CloudWatch Logs, read side, on the gateway's port: the containers' logs under SageMaker's names.

``DescribeLogGroups``, ``DescribeLogStreams``, ``GetLogEvents`` and ``FilterLogEvents`` in the
``logs`` service's JSON 1.1 protocol (``X-Amz-Target: Logs_20140328.<Op>``), so that
``boto3.client("logs")``, the SageMaker SDK's log printing and the AWS CLI read them unchanged.
Groups: ``/aws/sagemaker/Endpoints/<endpoint>`` (a stream per variant instance, and per container
when the model has several) and ``/aws/sagemaker/TransformJobs`` (a stream per job instance).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import UnknownOperation
from gateway.logs.checks import (
    InvalidParameter,
    ResourceNotFound,
    event_token,
    make_token,
    read_event_token,
    read_token,
    validate,
)
from gateway.logs.index import Event, LogIndex, Stream
from gateway.logs.patterns import matcher
from gateway.logstreams import stream_arn

#: Events per page when the caller gives no limit (the service's own ceiling).
MAX_EVENTS = 10_000
#: Groups or streams per page without a limit.
MAX_LISTED = 50

Operation = Callable[["LogsService", dict[str, Any]], dict[str, Any]]


class LogsService:
    """The four read operations over the state folder's container logs."""

    def __init__(self, state_dir: Path, *, region: str, account: str) -> None:
        self.index = LogIndex(state_dir)
        self.region = region
        self.account = account

    async def acall(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` off the event loop (it reads files)."""
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise UnknownOperation(
                f"CloudWatch Logs operation {operation[:100]!r} is not served here; Tandem "
                f"serves {', '.join(sorted(OPERATIONS))}."
            )
        cleaned = validate(operation, params)
        return await asyncio.to_thread(handler, self, cleaned)

    # ---- the operations ---------------------------------------------------------------------

    def describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
        if prefix is not None and pattern is not None:
            raise InvalidParameter(
                "logGroupNamePrefix and logGroupNamePattern are mutually exclusive; give one."
            )
        groups = self.index.groups()
        names = [
            g
            for g in groups
            if (prefix is None or g.startswith(prefix))
            and (pattern is None or pattern.lower() in g.lower())
        ]
        query = [prefix, pattern]
        page, token = _page(names, params, "DescribeLogGroups", query, MAX_LISTED)
        out: dict[str, Any] = {"logGroups": [self._group(g, groups[g]) for g in page]}
        return _with(out, "nextToken", token)

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        streams = self._streams(group)
        prefix = params.get("logStreamNamePrefix")
        by_time = params.get("orderBy") == "LastEventTime"
        if prefix is not None and by_time:
            raise InvalidParameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix (orderBy)."
            )
        chosen = [s for s in streams if prefix is None or s.name.startswith(prefix)]
        if by_time:
            chosen.sort(key=lambda s: s.last_write())
        if params.get("descending"):
            chosen.reverse()
        query = [group, prefix, by_time, bool(params.get("descending"))]
        page, token = _page(chosen, params, "DescribeLogStreams", query, MAX_LISTED)
        return _with({"logStreams": [self._stream(s) for s in page]}, "nextToken", token)

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        name = params["logStreamName"]
        stream = next((s for s in self._streams(group) if s.name == name), None)
        if stream is None:
            raise ResourceNotFound(
                f"The specified log stream does not exist: logStreamName {name[:200]!r} in "
                f"log group {group!r}."
            )
        events = _in_time(stream.events(), params)
        limit = params.get("limit", MAX_EVENTS)
        token = params.get("nextToken")
        query = [group, name]  # positions count within the time range asked
        if token is not None:
            direction, at = read_event_token(token, query)
            at = min(at, len(events))
            start, end = (at, at + limit) if direction == "f" else (max(0, at - limit), at)
        elif params.get("startFromHead"):
            start, end = 0, limit
        else:
            start, end = max(0, len(events) - limit), len(events)
        end = min(end, len(events))
        return {
            "events": [_event(e) for e in events[start:end]],
            "nextForwardToken": event_token("f", query, end),
            "nextBackwardToken": event_token("b", query, start),
        }

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise InvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive; give one."
            )
        streams = self._streams(group)
        if names is not None:
            streams = [s for s in streams if s.name in set(names)]
        elif prefix is not None:
            streams = [s for s in streams if s.name.startswith(prefix)]
        keep = matcher(params.get("filterPattern", ""))
        found = [
            (event, stream.name)
            for stream in streams
            for event in _in_time(stream.events(), params)
            if keep(event.message)
        ]
        found.sort(key=lambda item: (item[0].timestamp, item[1], item[0].position))
        query = [group, names, prefix, params.get("filterPattern", "")]
        query += [params.get("startTime"), params.get("endTime")]
        page, token = _page(found, params, "FilterLogEvents", query, MAX_EVENTS)
        out: dict[str, Any] = {
            "events": [
                {**_event(e), "logStreamName": s, "eventId": _event_id(s, e)} for e, s in page
            ],
            "searchedLogStreams": [
                {"logStreamName": s.name, "searchedCompletely": True} for s in streams
            ],
        }
        return _with(out, "nextToken", token)

    # ---- shared ---------------------------------------------------------------------------------

    def _group_name(self, params: dict[str, Any]) -> str:
        """``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN): exactly one."""
        name, ident = params.get("logGroupName"), params.get("logGroupIdentifier")
        if (name is None) == (ident is None):
            raise InvalidParameter(
                "Give exactly one of logGroupName and logGroupIdentifier "
                f"(got {'both' if name is not None else 'neither'})."
            )
        if ident is not None:
            name = ident.split(":log-group:", 1)[1] if ":log-group:" in ident else ident
            name = name.removesuffix(":*")
        assert name is not None
        return name

    def _streams(self, group: str) -> list[Stream]:
        streams = self.index.groups().get(group)
        if streams is None:
            raise ResourceNotFound(
                f"The specified log group does not exist: logGroupName {group[:200]!r}."
            )
        return streams

    def _group(self, name: str, streams: list[Stream]) -> dict[str, Any]:
        arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}"
        return {
            "logGroupName": name,
            "creationTime": min(s.created() for s in streams),
            "metricFilterCount": 0,
            "arn": f"{arn}:*",
            "logGroupArn": arn,
            "storedBytes": sum(s.stored_bytes() for s in streams),
            "logGroupClass": "STANDARD",
        }

    def _stream(self, stream: Stream) -> dict[str, Any]:
        events = stream.events()
        out: dict[str, Any] = {
            "logStreamName": stream.name,
            "creationTime": stream.created(),
            "arn": stream_arn(self.region, self.account, stream.group, stream.name),
            "storedBytes": stream.stored_bytes(),
        }
        if events:
            out["firstEventTimestamp"] = events[0].timestamp
            out["lastEventTimestamp"] = events[-1].timestamp
            out["lastIngestionTime"] = stream.last_write()
        return out


def _in_time(events: list[Event], params: dict[str, Any]) -> list[Event]:
    """Events from ``startTime`` (included) to ``endTime`` (excluded), epoch milliseconds."""
    start, end = params.get("startTime"), params.get("endTime")
    if start is not None and end is not None and end < start:
        raise InvalidParameter(f"endTime ({end}) must not be before startTime ({start}).")
    return [
        e
        for e in events
        if (start is None or e.timestamp >= start) and (end is None or e.timestamp < end)
    ]


def _page(
    items: list[Any], params: dict[str, Any], kind: str, query: Any, default: int
) -> tuple[list[Any], str | None]:
    """One page from ``nextToken`` on, and the token of the next (None on the last)."""
    start = read_token(params.get("nextToken"), kind, query)
    end = start + params.get("limit", default)
    return items[start:end], make_token(kind, query, end) if end < len(items) else None


def _with(out: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is not None:
        out[key] = value
    return out


def _event(event: Event) -> dict[str, Any]:
    return {
        "timestamp": event.timestamp,
        "message": event.message,
        "ingestionTime": event.timestamp,
    }


def _event_id(stream: str, event: Event) -> str:
    """Stable across calls and processes: the stream's checksum and the event's place in it."""
    file, line = event.position
    return f"{event.timestamp}-{zlib.crc32(stream.encode()):010d}-{file}-{line}"


OPERATIONS: dict[str, Operation] = {
    "DescribeLogGroups": LogsService.describe_log_groups,
    "DescribeLogStreams": LogsService.describe_log_streams,
    "GetLogEvents": LogsService.get_log_events,
    "FilterLogEvents": LogsService.filter_log_events,
}
