"""CloudWatch Logs' read side, driven by the real boto3 ``logs`` client over real HTTP.

The state folder is laid out as the supervisor leaves it (lines written by ``ContainerLog`` and
lines stamped at chosen times in its format): an endpoint with a two-container model, one with
two variants, a transform job. Every answer is checked against what the files hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.control import ControlPlane, control_app, service_route
from gateway.lifecycle.containerlog import ContainerLog, stamp
from gateway.logs import TARGET_PREFIX, LogsService
from gateway.logstreams import instance_id
from gateway.state import FILENAME, StateStore
from tests.gateway.harness import serve

T0 = 1_767_000_000_000  # ms


def write(path: Path, lines: list[tuple[int, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{stamp(ms / 1000)} {text}\n" for ms, text in lines))


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Any]:
    state = tmp_path / "state"
    endpoints = state / "endpoints"  # the layout of ``gateway.folders``
    # churn: one instance of a two-container model (Serial), written as the supervisor does.
    for hostname in ("pre", "clf"):
        log = ContainerLog(
            f"churn/{hostname}",
            endpoints / "churn" / "churn" / hostname / "container.log",
            tail=5,
            labels={"endpoint": "churn", "variant": "Main", "hostname": hostname},
        )
        log.open(truncate=True)
        log(f"{hostname} booting")
        log(f"{hostname} ready")
        log.close()
    # ab: two variants, one instance each, one container; lines at chosen times.
    write(
        endpoints / "ab" / "ab_blue_0" / "model" / "container.log",
        [(T0 + i, f"blue {i}") for i in range(7)],
    )
    write(
        endpoints / "ab" / "ab_green_0" / "model" / "container.log", [(T0 + 3, "green ERROR boom")]
    )
    # a transform job with one container, and a folder that is no endpoint's.
    write(
        state / "jobs" / "endpoints" / "score" / "score" / "m" / "container.log", [(T0, "job line")]
    )
    (endpoints / "not_an_endpoint_folder!" / "x").mkdir(parents=True)
    store = StateStore(state / FILENAME)
    service = LogsService(state, region="us-east-1", account="000000000000")
    app = control_app(ControlPlane(store), services=[service_route(service.acall, TARGET_PREFIX)])
    with serve(app) as url:
        yield boto3.client(
            "logs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 0}),
        )
    store.close()


def error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_groups_and_streams_under_sagemakers_names(logs: Any) -> None:
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [
        "/aws/sagemaker/Endpoints/ab",
        "/aws/sagemaker/Endpoints/churn",
        "/aws/sagemaker/TransformJobs",
    ]
    assert groups[0]["arn"] == (
        "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/ab:*"
    )
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/churn")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    churn = instance_id("churn")
    assert names == [f"Main/{churn}/clf", f"Main/{churn}/pre"]
    ab = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/ab")["logStreams"]
    assert [s["logStreamName"] for s in ab] == [
        f"blue/{instance_id('ab_blue_0')}",
        f"green/{instance_id('ab_green_0')}",
    ]
    assert (ab[0]["firstEventTimestamp"], ab[0]["lastEventTimestamp"]) == (T0, T0 + 6)
    job = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="score/"
    )["logStreams"]
    assert [s["logStreamName"] for s in job] == [f"score/{instance_id('score')}"]
    pattern = logs.describe_log_groups(logGroupNamePattern="TRANSFORM")["logGroups"]
    assert [g["logGroupName"] for g in pattern] == ["/aws/sagemaker/TransformJobs"]


def test_get_log_events_pages_both_ways_within_a_time_range(logs: Any) -> None:
    group = "/aws/sagemaker/Endpoints/ab"
    stream = f"blue/{instance_id('ab_blue_0')}"
    first = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True, limit=3, startTime=T0 + 1
    )
    assert [e["message"] for e in first["events"]] == ["blue 1", "blue 2", "blue 3"]
    assert [e["timestamp"] for e in first["events"]] == [T0 + 1, T0 + 2, T0 + 3]
    second = logs.get_log_events(
        logGroupName=group,
        logStreamName=stream,
        startTime=T0 + 1,
        endTime=T0 + 6,  # excluded
        nextToken=first["nextForwardToken"],
        limit=3,
    )
    assert [e["message"] for e in second["events"]] == ["blue 4", "blue 5"]
    end = logs.get_log_events(
        logGroupName=group,
        logStreamName=stream,
        startTime=T0 + 1,
        endTime=T0 + 6,
        nextToken=second["nextForwardToken"],
    )
    assert end["events"] == [] and end["nextForwardToken"] == second["nextForwardToken"]
    back = logs.get_log_events(
        logGroupName=group,
        logStreamName=stream,
        startTime=T0 + 1,  # the same query, read backwards
        endTime=T0 + 6,
        nextToken=second["nextBackwardToken"],
        limit=2,
    )
    assert [e["message"] for e in back["events"]] == ["blue 2", "blue 3"]
    newest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert [e["message"] for e in newest["events"]] == ["blue 5", "blue 6"]


def test_lines_written_by_the_supervisors_log_come_back_in_order(logs: Any) -> None:
    stream = f"Main/{instance_id('churn')}/pre"
    events = logs.get_log_events(
        logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/churn",
        logStreamName=stream,
        startFromHead=True,
    )["events"]
    assert [e["message"] for e in events] == ["pre booting", "pre ready"]
    assert events[0]["timestamp"] <= events[1]["timestamp"]


def test_filter_log_events_over_streams_with_patterns_and_paging(logs: Any) -> None:
    group = "/aws/sagemaker/Endpoints/ab"
    hits = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")
    assert [(e["message"], e["logStreamName"].split("/")[0]) for e in hits["events"]] == [
        ("green ERROR boom", "green")
    ]
    assert len(hits["searchedLogStreams"]) == 2
    seen, token, pages = [], None, 0
    while True:
        kwargs: dict[str, str] = {"nextToken": token} if token else {}
        page = logs.filter_log_events(
            logGroupName=group, startTime=T0 + 2, endTime=T0 + 5, limit=2, **kwargs
        )
        seen += [e["message"] for e in page["events"]]
        pages += 1
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == ["blue 2", "blue 3", "green ERROR boom", "blue 4"]
    assert pages == 2
    either = logs.filter_log_events(
        logGroupName=group, filterPattern='?"blue 6" ?boom -green', logStreamNamePrefix="blue/"
    )
    assert [e["message"] for e in either["events"]] == ["blue 6"]


def test_bad_input_names_the_field(logs: Any) -> None:
    group = "/aws/sagemaker/Endpoints/ab"
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/nope")
    code, message = error(info)
    assert code == "ResourceNotFoundException" and "logGroupName" in message and "nope" in message
    assert isinstance(info.value, logs.exceptions.ResourceNotFoundException)
    with pytest.raises(ClientError) as info:
        logs.get_log_events(logGroupName=group, logStreamName="blue/i-nope")
    code, message = error(info)
    assert code == "ResourceNotFoundException" and "logStreamName 'blue/i-nope'" in message
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName=group, nextToken="bm90IG91cnM")
    code, message = error(info)
    assert code == "InvalidParameterException" and "nextToken" in message
    # A token of ours, from another call: refused too.
    listed = logs.describe_log_groups(limit=1)
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName=group, nextToken=listed["nextToken"])
    assert error(info)[0] == "InvalidParameterException"
    blue = f"blue/{instance_id('ab_blue_0')}"
    green = f"green/{instance_id('ab_green_0')}"
    token = logs.get_log_events(logGroupName=group, logStreamName=blue)["nextForwardToken"]
    for stream, bad in [(blue, "garbage"), (blue, "f/12"), (green, token)]:  # the last: blue's
        with pytest.raises(ClientError) as info:
            logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=bad)
        code, message = error(info)
        assert code == "InvalidParameterException" and "nextToken" in message
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(
            logGroupName=group, logStreamNamePrefix="blue", orderBy="LastEventTime"
        )
    code, message = error(info)
    assert code == "InvalidParameterException" and "orderBy" in message
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.level = 1 }")
    code, message = error(info)
    assert code == "InvalidParameterException" and "filterPattern" in message


def test_limits_come_from_botocores_model(logs: Any) -> None:
    raw = boto3.client(
        "logs",
        endpoint_url=logs.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, parameter_validation=False),
    )
    with pytest.raises(ClientError) as info:
        raw.describe_log_groups(limit=51)
    code, message = error(info)
    assert code == "InvalidParameterException"
    assert "'limit'" in message and "less than or equal to 50" in message
    with pytest.raises(ClientError) as info:
        raw.get_log_events(logStreamName="x", logGroupName="a b")
    code, message = error(info)
    assert code == "InvalidParameterException" and "'logGroupName'" in message


def test_the_write_side_is_not_served(logs: Any) -> None:
    with pytest.raises(ClientError) as info:
        logs.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": T0, "message": "m"}]
        )
    code, message = error(info)
    assert code == "UnknownOperationException" and "PutLogEvents" in message
