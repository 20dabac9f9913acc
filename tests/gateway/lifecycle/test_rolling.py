"""Rolling updates on a real ``tandem serve`` (two instances, batches of one), through boto3.

The share of the new version's answers follows its share of the instances; an alarm during a
batch's baking brings the old fleet back whole and stops the new one; no request fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.lifecycle.guarded import Load, gateway, models
from tests.support import wait_until

pytest.importorskip("sklearn")
pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def rolling(wait: int, **extra: Any) -> dict[str, Any]:
    return {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
            "WaitIntervalInSeconds": wait,
        },
        **extra,
    }


def test_a_rolling_update_replaces_one_instance_at_a_time(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        gw.setup(models(tmp_path), instances=2)
        with Load(gw) as load:
            gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                                  DeploymentConfig=rolling(6))  # fmt: skip
            first = gw.stage("1 of 2 new instance(s) up, 2 old")
            assert "33% of the traffic on the new fleet" in first["StatusMessage"]
            start = time.monotonic()
            second = gw.stage("2 of 2 new instance(s) up, 1 old")
            third = load.between(start, time.monotonic())
            assert "67% of the traffic on the new fleet" in second["StatusMessage"]
            done = gw.wait_status("InService")
        assert load.failures == []
        assert 0 < third.count("2") < len(third), "a third of the answers came from the new one"
        assert done["EndpointConfigName"] == "v2"
        (variant,) = done["ProductionVariants"]
        assert variant["CurrentInstanceCount"] == 2
        assert {gw.answer() for _ in range(20)} == {"2"}


def test_an_alarm_in_a_rolling_update_brings_the_old_fleet_back(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        gw.setup(models(tmp_path), instances=2)
        alarm = gw.alarm()
        policy = rolling(8, AutoRollbackConfiguration={"Alarms": [{"AlarmName": alarm}]})
        policy["RollingUpdatePolicy"]["RollbackMaximumBatchSize"] = {
            "Type": "INSTANCE_COUNT",
            "Value": 1,
        }
        with Load(gw) as load:
            gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                                  DeploymentConfig=policy)  # fmt: skip
            # Between two batches (or in the second's baking): the next look at the alarms sees it.
            gw.stage("Replacing 1 old instance(s) by 1 new")
            gw.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="drill")
            back = gw.wait_status("InService", timeout=120)
            after = time.monotonic()
            wait_until(lambda: len(load.between(after, time.monotonic())) >= 20, what="answers")
        assert load.failures == []
        assert set(load.between(after, time.monotonic())) == {"1"}
        assert back["EndpointConfigName"] == "v1" and alarm in back["FailureReason"]
        assert "2 of 2 new instance(s) up, 1 old" in back["FailureReason"]
        (variant,) = back["ProductionVariants"]
        assert variant["CurrentInstanceCount"] == 2
