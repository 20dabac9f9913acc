"""Deployment guardrails on a real ``tandem serve``: real scikit-learn containers, boto3 clients.

Canary and linear updates under load shift the traffic by the configured shares (counted from
the answers: version 1 answers 1, version 2 answers 2) and complete; an alarm forced to ``ALARM``
(``SetAlarmState``, as in an AWS drill) during the baking moves all traffic back; a gateway killed
with SIGKILL in the middle rolls back (or, all traffic already moved, completes) when it starts
again. No request fails in any of them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.cli.test_endpoints_cli import ok
from tests.gateway.lifecycle.conftest import processes_of
from tests.gateway.lifecycle.guarded import Gateway, Load, canary, gateway, models
from tests.support import wait_until

pytest.importorskip("sklearn")
pytestmark = [pytest.mark.sklearn, pytest.mark.slow]


def within(count: int, n: int, p: float) -> bool:
    """``count`` of ``n`` draws is what a share ``p`` gives (5 standard deviations)."""
    spread = 5 * math.sqrt(n * p * (1 - p)) + 1
    return n * p - spread <= count <= n * p + spread


def test_a_canary_under_load_shifts_its_share_then_completes(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        gw.setup(models(tmp_path))
        alarm = gw.alarm()
        policy = canary(8, 25, AutoRollbackConfiguration={"Alarms": [{"AlarmName": alarm}]})
        with Load(gw) as load:
            gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                                  DeploymentConfig=policy)  # fmt: skip
            baking = gw.stage("Baking for 8 s: step 1 of 2")
            start = time.monotonic()
            assert "25% of the traffic on the new fleet" in baking["StatusMessage"]
            described = gw.status()
            (pending,) = described["PendingDeploymentSummary"]["ProductionVariants"]
            assert pending["CurrentWeight"] == pytest.approx(0.25)
            statuses = [s["Status"] for s in pending["VariantStatus"]]
            assert statuses == ["Creating", "ActivatingTraffic", "Baking"]
            gw.stage("step 2 of 2")
            canary_answers = load.between(start, time.monotonic())
            done = gw.wait_status("InService")
            after = time.monotonic()
            wait_until(lambda: len(load.between(after, time.monotonic())) >= 20, what="answers")
        assert load.failures == []
        twos = canary_answers.count("2")
        assert 0 < twos < len(canary_answers), "the canary took a share, not all of it"
        if len(canary_answers) >= 40:
            assert within(twos, len(canary_answers), 0.25), (twos, len(canary_answers))
        assert set(load.between(after, time.monotonic())) == {"2"}
        assert done["EndpointConfigName"] == "v2"
        assert "FailureReason" not in done and "PendingDeploymentSummary" not in done
        assert done["LastDeploymentConfig"] == policy


def test_an_alarm_during_the_baking_rolls_back_at_once_failing_nothing(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        gw.setup(models(tmp_path))
        alarm = gw.alarm()
        policy = canary(600, 50, AutoRollbackConfiguration={"Alarms": [{"AlarmName": alarm}]})
        with Load(gw) as load:
            gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                                  DeploymentConfig=policy)  # fmt: skip
            gw.stage("step 1 of 2")
            wait_until(lambda: "2" in [a for _, a in load.answers[-50:]], what="a canary answer")
            shown = ok("endpoints", "describe", "ep", "--url", gw.url)
            assert "deployment: 50% of the traffic on the new fleet, 50% on the old" in shown
            assert "ActivatingTraffic" in shown and "Baking" in shown, shown
            gw.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="drill")
            back = gw.wait_status("InService", timeout=60)
            after = time.monotonic()
            wait_until(lambda: len(load.between(after, time.monotonic())) >= 20, what="answers")
        assert load.failures == []
        assert set(load.between(after, time.monotonic())) == {"1"}
        assert back["EndpointConfigName"] == "v1"
        assert alarm in back["FailureReason"] and "rolled back" in back["FailureReason"]
        assert "PendingDeploymentSummary" not in back
        metrics = httpx.get(gw.url + "/metrics", timeout=10).text
        assert 'tandem_deployment_rollbacks_total{cause="alarm",endpoint="ep"} 1.0' in metrics
        assert f'alarm="{alarm}",endpoint="ep",state="ALARM"' in metrics


def test_linear_steps_move_the_traffic_in_equal_parts(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        gw.setup(models(tmp_path))
        policy = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR",
                    "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                    "WaitIntervalInSeconds": 6,
                }
            }
        }
        with Load(gw) as load:
            gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                                  DeploymentConfig=policy)  # fmt: skip
            first = gw.stage("Baking for 6 s: step 1 of 2")
            assert "50% of the traffic on the new fleet, 50% on the old" in first["StatusMessage"]
            start = time.monotonic()
            gw.stage("step 2 of 2")
            half = load.between(start, time.monotonic())
            done = gw.wait_status("InService")
        assert load.failures == []
        assert 0 < half.count("2") < len(half)
        if len(half) >= 40:
            assert within(half.count("2"), len(half), 0.5), (half.count("2"), len(half))
        assert done["EndpointConfigName"] == "v2"
        assert gw.answer() == "2"


def kill(gw: Gateway) -> None:
    gw.proc.kill()  # SIGKILL, the gateway alone: its containers are reaped by the next one
    gw.proc.wait()


def test_a_gateway_killed_while_shifting_rolls_back_when_it_starts_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with gateway(tmp_path, state, "first") as gw:
        gw.setup(models(tmp_path))
        gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                              DeploymentConfig=canary(600, 50))  # fmt: skip
        gw.stage("step 1 of 2")
        kill(gw)
    with gateway(tmp_path, state, "second") as gw:
        back = gw.wait_status("InService")
        assert back["EndpointConfigName"] == "v1"
        assert "gateway stopped" in back["FailureReason"]
        assert {gw.answer() for _ in range(20)} == {"1"}


def test_a_gateway_killed_in_the_termination_wait_completes_the_update(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with gateway(tmp_path, state, "first") as gw:
        gw.setup(models(tmp_path))
        gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                              DeploymentConfig=canary(0, 50, termination=600))  # fmt: skip
        gw.stage("Termination wait")
        kill(gw)
    with gateway(tmp_path, state, "second") as gw:
        done = gw.wait_status("InService")
        assert done["EndpointConfigName"] == "v2"
        assert "FailureReason" not in done
        assert {gw.answer() for _ in range(20)} == {"2"}


def test_a_gateway_stopped_while_shifting_leaves_nothing_running_then_rolls_back(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with gateway(tmp_path, state, "first") as gw:
        gw.setup(models(tmp_path))
        gw.sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2",
                              DeploymentConfig=canary(600, 50))  # fmt: skip
        gw.stage("step 1 of 2")
        gw.proc.terminate()  # SIGTERM: an orderly shutdown in the middle of the bake
        assert gw.proc.wait(timeout=60) == 0
    assert wait_until(lambda: not processes_of(state), timeout=30, what="no container left")
    with gateway(tmp_path, state, "second") as gw:
        back = gw.wait_status("InService")
        assert back["EndpointConfigName"] == "v1" and "gateway stopped" in back["FailureReason"]
        assert gw.answer() == "1"
