"""Deployment guardrails under a steady load: shares per step, failed requests, rollback time.

    .venv/bin/python benchmarks/guardrails.py [--wait 4] [--threads 4]

One ``tandem serve`` (process backend), two versions of a scikit-learn model (version 1 answers
1, version 2 answers 2, trained here in a child), a load of ``--threads`` clients posting one CSV
row each in a loop. Four updates, each from version 1 (the endpoint is re-created between them):

- ``canary``: CANARY of 20%, baked ``--wait`` s, then the rest;
- ``linear``: LINEAR steps of 34% (34%, 68%, 100%), each baked ``--wait`` s;
- ``rollback``: CANARY of 50% whose alarm is forced to ALARM (``SetAlarmState``) 2 s into its
  baking;
- ``rolling``: two instances, MaximumBatchSize of one instance (shares 1/3, then 2/3).

For each: failed requests (goal 0), each step's configured share of the new fleet against the
share of the answers from version 2 among the requests sent during that step, and for the
rollback the time from ``SetAlarmState`` to the send time of the last request answered by the
new fleet (goal <= the alarm's period, 10 s, plus 1 s). Steps come from polling
``DescribeEndpoint``'s ``PendingDeploymentSummary`` (their ``StartTime``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.servers import free_port, process  # noqa: E402

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
ALARM_PERIOD = 10
TRAIN = """
import sys, joblib, numpy as np
from pathlib import Path
from sklearn.dummy import DummyClassifier
for answer in (1, 2):
    folder = Path(sys.argv[1], f"v{answer}")
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer)
    joblib.dump(model.fit(np.zeros((2, 2)), [answer, 0]), folder / "model.joblib")
"""
SHARE = re.compile(r"(\d+)% of the traffic on the new fleet")


class Load:
    """``threads`` clients invoking ``ep``: (send time, answer) per request, and failures."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = f"{url}/endpoints/ep/invocations"
        self.answers: list[tuple[float, str]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.time()
                try:
                    answer = client.post(self.url, content=b"0.5,0.5\n",
                                         headers={"Content-Type": "text/csv"})  # fmt: skip
                    if answer.status_code != 200:
                        self.failures += 1
                        continue
                    self.answers.append((sent, answer.text.strip().strip("[]").split(",")[0]))
                except httpx.HTTPError:
                    self.failures += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def wait_for(check: Any, what: str, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run(sm: Any, cw: Any, url: str, name: str, policy: dict[str, Any], threads: int,
        instances: int = 1, alarm: bool = False) -> dict[str, Any]:  # fmt: skip
    """Create ``ep`` on v1, update it to v2 under load with ``policy``; what was measured."""
    for config in ("v1", "v2"):
        sm.create_endpoint_config(EndpointConfigName=f"{config}-{name}", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": config,
             "InitialInstanceCount": instances}])  # fmt: skip
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=f"v1-{name}")
    wait_for(lambda: sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService",
             "InService")  # fmt: skip
    stages: dict[tuple[str, float], str] = {}
    forced_at = None
    with Load(url, threads) as load:
        time.sleep(1.0)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName=f"v2-{name}",
                           DeploymentConfig=policy)  # fmt: skip
        while True:
            described = sm.describe_endpoint(EndpointName="ep")
            pending = described.get("PendingDeploymentSummary")
            if pending is None and described["EndpointStatus"] == "InService":
                ended = time.time()
                break
            for stage in (pending or {}).get("ProductionVariants", [{}])[0].get(
                    "VariantStatus", []):  # fmt: skip
                stages[(stage["Status"], stage["StartTime"].timestamp())] = stage.get(
                    "StatusMessage", "")  # fmt: skip
            baking = [t for (s, t) in stages if s == "Baking"]
            if alarm and forced_at is None and baking and time.time() - min(baking) > 2.0:
                forced_at = time.time()
                cw.set_alarm_state(AlarmName="ep-alarm", StateValue="ALARM", StateReason="drill")
            time.sleep(0.05)
        time.sleep(1.0)
    done = sm.describe_endpoint(EndpointName="ep")
    ordered = sorted(stages.items(), key=lambda item: item[0][1])
    steps = []
    for i, ((status, start), message) in enumerate(ordered):
        found = SHARE.search(message)
        if status != "Baking" or found is None:
            continue
        end = ordered[i + 1][0][1] if i + 1 < len(ordered) else ended
        end = min(end, forced_at or end)  # a rollback ends the step
        sent = [a for t, a in load.answers if start <= t < end]
        measured = sent.count("2") / len(sent) if sent else float("nan")
        steps.append((int(found.group(1)) / 100, measured, len(sent)))
    result: dict[str, Any] = {"failed": load.failures, "requests": len(load.answers),
                              "steps": steps, "config": done["EndpointConfigName"]}  # fmt: skip
    if forced_at is not None:
        late = [t for t, a in load.answers if a == "2" and t >= forced_at]
        result["to_old"] = (max(late) - forced_at) if late else 0.0
    sm.delete_endpoint(EndpointName="ep")
    wait_for(lambda: not sm.list_endpoints()["Endpoints"], "the endpoint deleted")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wait", type=int, default=4, help="baking per step, seconds")
    parser.add_argument("--threads", type=int, default=4, help="clients of the steady load")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tandem-guardrails-"))
    try:
        models = work / "models"
        subprocess.run([sys.executable, "-c", TRAIN, str(models)], check=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gateway", "serve", "--state-dir", str(work / "state"),
                   "--port", str(port)]  # fmt: skip
        env = {"TANDEM_MODEL_ROOTS": str(models), "TANDEM_LOG_LEVEL": "warning"}
        with process(command, env, f"{url}/ping"):
            config = Config(retries={"max_attempts": 0}, read_timeout=60)
            sm = boto3.client("sagemaker", endpoint_url=url, config=config, **KEYS)
            cw = boto3.client("cloudwatch", endpoint_url=url, config=config, **KEYS)
            for version in ("v1", "v2"):
                sm.create_model(ModelName=version, ExecutionRoleArn=ROLE, PrimaryContainer={
                    "Image": IMAGE, "ModelDataUrl": str(models / version)})  # fmt: skip
            cw.put_metric_alarm(
                AlarmName="ep-alarm", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                Dimensions=[{"Name": "EndpointName", "Value": "ep"}], Statistic="Sum",
                Period=ALARM_PERIOD, EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanOrEqualToThreshold")  # fmt: skip
            alarms = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-alarm"}]}}

            def blue_green(kind: str, size: str, percent: int, wait: int) -> dict[str, Any]:
                routing = {"Type": kind, size: {"Type": "CAPACITY_PERCENT", "Value": percent},
                           "WaitIntervalInSeconds": wait}  # fmt: skip
                return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}}

            runs = {
                "canary": run(sm, cw, url, "canary",
                              blue_green("CANARY", "CanarySize", 20, args.wait), args.threads),
                "linear": run(sm, cw, url, "linear",
                              blue_green("LINEAR", "LinearStepSize", 34, args.wait), args.threads),
                "rollback": run(sm, cw, url, "rollback",
                                {**blue_green("CANARY", "CanarySize", 50, 600), **alarms},
                                args.threads, alarm=True),
                "rolling": run(sm, cw, url, "rolling", {"RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    "WaitIntervalInSeconds": args.wait}}, args.threads, instances=2),
            }  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"guardrails: {args.threads} clients, {args.wait} s baking per step")
    for name, result in runs.items():
        print(f"{name:9s} requests {result['requests']:6d}  failed {result['failed']} (goal 0)  "
              f"ended on {result['config']}")  # fmt: skip
        for configured, measured, n in result["steps"]:
            print(f"          step: configured {configured:5.0%}  measured {measured:6.1%}  "
                  f"({n} requests)")  # fmt: skip
        if "to_old" in result:
            goal = ALARM_PERIOD + 1
            print(
                f"          ALARM -> all traffic on the old fleet: {result['to_old']:.2f} s "
                f"(goal <= {goal} s: {'met' if result['to_old'] <= goal else 'MISSED'})"
            )


if __name__ == "__main__":
    main()
