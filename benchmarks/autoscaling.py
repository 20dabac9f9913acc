"""Seed 002's autoscaling experiment on this machine, in one run (issue 25's Figures).

    .venv/bin/python benchmarks/autoscaling.py [--clients 8] [--base 10] [--after 20]
        [--scale-in 240] [--quick]

One ``tandem serve`` serves one endpoint, the scikit-learn container of benchmarks/gateway.py
(logistic regression, one 20-feature CSV row per request). boto3's ``application-autoscaling``
client registers it as the seed does (MinCapacity 1, MaxCapacity 4) with a target-tracking
policy on invocations per instance: SageMaker's high-resolution one,
``SageMakerVariantConcurrentRequestsPerModelHighResolution`` (requests in flight per instance,
10-second datapoints; the per-minute ``SageMakerVariantInvocationsPerInstance`` needs 3 whole
minutes of data, as on AWS), its target half of what the step's load puts in flight, so that
the step is twice the target as in the seed (8,000 invocations a minute against 4,000) and asks
for a second instance. That load is measured first: before the policy exists, ``--clients``
clients run for one whole ten-second period and the gateway's own datapoint for it is read
(8 clients of this process keep about 5 requests in flight at the gateway, since each client
spends part of its loop in its own Python); ``--target`` sets it by hand instead.
``TANDEM_AUTOSCALING_MINUTE=1`` shortens the cooldowns
60 times (and every period the store keeps finer than 10 s): ScaleInCooldown 600 s becomes
10 s, and ScaleOutCooldown is 1800 s (30 s here) rather than the seed's 300, since an instance
still takes seconds to start and a 5 s cooldown would add a third one before the second serves.
The evaluator and the metric store run at their defaults: the evaluator looks every 10 s, just
after each ten-second period closes, and a read sees every request recorded until then.

The load is a closed loop of aiohttp clients in this process: after the measuring period (and
one period of one client, so that it is never the first of three datapoints above the target),
``--base`` seconds of one client
(the warm answer), then the step to ``--clients`` clients until the second instance has served
for ``--after`` seconds, then one client again until the variant is back at one instance (at
most ``--scale-in`` seconds: 15 datapoints below 90 % of the target, as AWS's scale-in). Then
the variant is scaled to zero (MinCapacity 0) and one request is timed from zero: it is held
while an instance starts (``gateway/serving/held.py``). Prints the timeline (every 5 s:
instances, req/s, p50, errors), the time from the step to the second instance serving (goal
<= 30 s; SageMaker: about 5 minutes), p50 at one and at two instances under the step, failed
requests (goal 0), the time to scale in, and the first answer from zero against a warm one
(goal <= 2 s). Both waits are broken down (``benchmarks/autoscaling_story.py``): where the step
fell in its period, each datapoint and when it closed, when AWS's rule (3 above the target) was
met, when the evaluator decided, and the new instance's start: its launcher and interpreter
(the process table), its web stack, scikit-learn and the model, listening (its log lines, read
through CloudWatch Logs), serving. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import autoscaling_story as story  # noqa: E402
from benchmarks.autoscaling_zero import Zero, from_zero, moments_line  # noqa: E402
from benchmarks.gateway import CSV, free_port, process, train  # noqa: E402

ENDPOINT = "clf"
RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}  # fmt: skip
KEYS = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
#: The evaluator and the metric store run at their defaults (a look just after each 10 s period
#: closes; reads see what was recorded up to then); only the cooldowns are shortened.
ENV = {"TANDEM_LOG_LEVEL": "warning", "TANDEM_AUTOSCALING_MINUTE": "1"}
#: Seconds between two DescribeEndpoint polls of the instances serving.
POLL = 0.1
STEP_GOAL_S, ZERO_GOAL_S = 30.0, 2.0


@dataclass
class Run:
    """What the clients and the poller saw: (end time, seconds, ok) and (time, instances)."""

    calls: list[tuple[float, float, bool]] = field(default_factory=list)
    counts: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def first(self, when: Callable[[int], bool], after: float) -> float | None:
        return next((t for t, n in self.counts if t >= after and when(n)), None)


async def load(
    url: str, run: Run, clients: Callable[[], int], stop: Callable[[], bool], most: int
) -> None:
    """A closed loop: ``clients()`` clients at each moment, until ``stop()``."""
    import aiohttp

    headers = {"Content-Type": "text/csv"}
    async with aiohttp.ClientSession() as session:

        async def client(index: int) -> None:
            while not stop():
                if index >= clients():
                    await asyncio.sleep(0.05)
                    continue
                began = time.monotonic()
                try:
                    async with session.post(url, data=CSV, headers=headers) as answer:
                        await answer.read()
                        ok = answer.status == 200
                        if not ok:
                            run.errors.append(f"{answer.status} {await answer.text()}"[:200])
                except aiohttp.ClientError as exc:
                    ok = False
                    run.errors.append(repr(exc)[:200])
                ended = time.monotonic()
                run.calls.append((ended, ended - began, ok))

        await asyncio.gather(*(client(i) for i in range(most)))


def poll(sm: Any, run: Run, stop: threading.Event) -> None:
    """The variant's instances serving (CurrentInstanceCount), every ``POLL`` s."""
    while not stop.is_set():
        (variant,) = sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
        run.counts.append((time.monotonic(), int(variant["CurrentInstanceCount"])))
        stop.wait(POLL)


def put_policy(aas: Any, target: float) -> None:
    """Seed 002's target-tracking policy, on the high-resolution metric."""
    aas.put_scaling_policy(
        PolicyName="Invocations-ScalingPolicy", PolicyType="TargetTrackingScaling",
        **TARGET, TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {"PredefinedMetricType":
                "SageMakerVariantConcurrentRequestsPerModelHighResolution"},
            "ScaleInCooldown": 600, "ScaleOutCooldown": 1800},
    )  # fmt: skip


def p50_ms(run: Run, start: float, end: float) -> float:
    times = [s for t, s, ok in run.calls if start <= t < end and ok]
    return statistics.median(times) * 1e3 if times else float("nan")


def experiment(url: str, args: argparse.Namespace, clients: dict[str, Any]) -> dict[str, Any]:
    invoke = f"{url}/endpoints/{ENDPOINT}/invocations"
    sm = clients["sagemaker"]
    run, phase = Run(), {"clients": 1, "stop": False}
    marks: dict[str, float] = {}
    wall = time.time() - time.monotonic()  # monotonic + wall: epoch seconds
    stop_poll = threading.Event()
    poller = threading.Thread(target=poll, args=(sm, run, stop_poll), daemon=True)
    poller.start()

    async def drive() -> None:
        task = asyncio.create_task(
            load(
                invoke,
                run,
                lambda: int(phase["clients"]),
                lambda: bool(phase["stop"]),
                args.clients,
            )
        )
        # The step's load for one whole period, then one client for the next: the policy is put
        # after both, so the measured period is never the first of three above its target.
        boundary = (math.floor(time.time() / story.PERIOD) + 1) * story.PERIOD
        await asyncio.sleep(boundary - time.time())
        phase["clients"] = args.clients
        await asyncio.sleep(boundary + story.PERIOD - time.time())
        phase["clients"] = 1
        await asyncio.sleep(boundary + 2 * story.PERIOD - time.time())
        points = await asyncio.to_thread(
            story.datapoints, clients["cloudwatch"], ENDPOINT, boundary, boundary + story.PERIOD
        )
        result["step_inflight"] = points[0][1] if points else float("nan")
        if not args.target:  # no datapoint (nothing answered): half the clients
            measured = result["step_inflight"]
            args.target = args.clients / 2 if math.isnan(measured) else round(measured / 2, 1)
        await asyncio.to_thread(put_policy, clients["aas"], args.target)
        marks["start"] = time.monotonic()
        # Where the step falls in its period decides whether that period counts (see
        # docs/autoscaling.md): left to chance (the measuring above would put it at the start).
        phase_s = random.uniform(0, story.PERIOD) if args.phase is None else args.phase
        step_at = math.ceil((time.time() + args.base) / story.PERIOD) * story.PERIOD + phase_s
        await asyncio.sleep(step_at - time.time())
        marks["step"] = time.monotonic()
        phase["clients"] = args.clients
        step = story.Story(step=marks["step"] + wall)
        deadline = marks["step"] + args.step_limit
        while time.monotonic() < deadline and run.first(lambda n: n >= 2, marks["step"]) is None:
            await asyncio.sleep(0.1)
        second = run.first(lambda n: n >= 2, marks["step"])
        marks["second"] = second if second is not None else time.monotonic()
        if second is not None:  # before the scale-in stops it: its processes and its log
            step.serving = second + wall
            step.launcher, step.interpreter = await asyncio.to_thread(story.newest_container)
            step.stages = await asyncio.to_thread(
                story.stages, clients["logs"], ENDPOINT, step.step
            )
        await asyncio.sleep(args.after)
        marks["drop"] = time.monotonic()
        phase["clients"] = 1
        deadline = marks["drop"] + args.scale_in
        while time.monotonic() < deadline:
            if run.first(lambda n: n == 1, marks["drop"] + 1.0) is not None:
                break
            await asyncio.sleep(0.25)
        marks["end"] = time.monotonic()
        phase["stop"] = True
        await task
        step.points = story.datapoints(
            clients["cloudwatch"], ENDPOINT, step.step - story.PERIOD, marks["second"] + wall
        )
        step.decided = story.decided(clients["aas"], "AlarmHigh", "", step.step)
        result["story"] = step

    result: dict[str, Any] = {"run": run, "marks": marks}
    asyncio.run(drive())
    stop_poll.set()
    poller.join(timeout=10)
    return result


def timeline(run: Run, marks: dict[str, float]) -> None:
    print(f"\n{'t (s)':>6} {'instances':>9} {'req/s':>7} {'p50 ms':>7} {'errors':>6}")
    t0, end = marks["start"], marks["end"]
    for start in range(0, int(end - t0) + 1, 5):
        a, b = t0 + start, t0 + start + 5
        calls = [c for c in run.calls if a <= c[0] < b]
        counts = [n for t, n in run.counts if a <= t < b]
        label = ""
        for name in ("step", "second", "drop"):
            if a <= marks[name] < b:
                label += f"  <- {name}"
        errors = sum(1 for c in calls if not c[2])
        print(
            f"{start:>6} {max(counts, default=0):>9} {len(calls) / 5:>7.0f} "
            f"{p50_ms(run, a, b):>7.2f} {errors:>6}{label}"
        )


def report(result: dict[str, Any], args: argparse.Namespace, zero: Zero) -> None:
    run, marks = result["run"], result["marks"]
    timeline(run, marks)
    if "story" in result:
        print("\n".join(story.lines(result["story"], args.target)))
    step, second, drop = marks["step"], marks["second"], marks["drop"]
    reached = run.first(lambda n: n >= 2, step) is not None
    back = run.first(lambda n: n == 1, drop + 1.0)
    failed = sum(1 for c in run.calls if not c[2])
    peak = max((n for _, n in run.counts), default=0)
    print(f"\nstep from 1 to {args.clients} clients ({result['step_inflight']:.2f} requests in "
          f"flight at the gateway, measured first); target {args.target:g} requests in flight "
          f"per instance (high-resolution policy)")  # fmt: skip
    if reached:
        print(f"step -> second instance serving: {second - step:.1f} s "
              f"(goal <= {STEP_GOAL_S:.0f} s; SageMaker: about 300 s)")  # fmt: skip
    else:
        print(f"step -> second instance serving: not within {args.step_limit:.0f} s")
    print(f"p50 under the step: {p50_ms(run, step, second):.2f} ms at one instance, "
          f"{p50_ms(run, second + 2.0, drop):.2f} ms at {peak} (ratio "
          f"{p50_ms(run, second + 2.0, drop) / p50_ms(run, step, second):.2f}); "
          f"one client: {p50_ms(run, marks['start'], step):.2f} ms")  # fmt: skip
    print(f"requests: {len(run.calls)}, failed: {failed} (goal 0)")
    for error in run.errors[:3]:
        print(f"  {error}")
    if back is not None:
        print(f"load dropped -> back at one instance: {back - drop:.1f} s "
              "(15 ten-second datapoints below 90 % of the target)")  # fmt: skip
    else:
        print(f"load dropped -> still above one instance after {args.scale_in:.0f} s")
    first, warm, moments = zero
    print(f"first answer from zero: {first * 1e3:.0f} ms (goal <= {ZERO_GOAL_S * 1e3:.0f} ms); "
          f"a warm answer: {warm * 1e3:.2f} ms (ratio {first / warm:.0f}x)")  # fmt: skip
    print(f"  ms after the request: {moments_line(moments)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="clients during the step")
    parser.add_argument("--target", type=float, default=0.0,
                        help="the policy's target (default: half of what the step's load "
                             "puts in flight, measured first)")  # fmt: skip
    parser.add_argument("--base", type=float, default=10.0, help="seconds of one client first")
    parser.add_argument("--after", type=float, default=20.0,
                        help="seconds of the step after the second instance serves")  # fmt: skip
    parser.add_argument("--phase", type=float, default=None,
                        help="seconds into its 10 s period the step comes (default: "
                             "at random)")  # fmt: skip
    parser.add_argument("--step-limit", type=float, default=120.0)
    parser.add_argument("--scale-in", type=float, default=240.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument("--zero-only", type=int, default=0, metavar="N",
                        help="only the first answer from zero, N times")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.base, args.after, args.scale_in = 3.0, 5.0, 10.0
    import boto3

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = train(work)
        spec = {"name": ENDPOINT, "containers": [{"framework": "sklearn", "model_data": str(model),
                "environment": {"TANDEM_INTRA_OP_THREADS": "1"}}]}  # fmt: skip
        path = work / f"{ENDPOINT}.yaml"
        path.write_text(yaml.safe_dump(spec))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gateway", "serve", str(path), "--port", str(port),
                   "--state-dir", str(work / "state")]  # fmt: skip
        with process(command, ENV, f"{url}/ping"):
            clients = {
                name: boto3.client(service, endpoint_url=url, **KEYS)
                for name, service in (("aas", "application-autoscaling"), ("sagemaker",
                    "sagemaker"), ("cloudwatch", "cloudwatch"), ("logs", "logs"))
            }  # fmt: skip
            aas = clients["aas"]
            aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=4)
            if args.zero_only:
                put_policy(aas, args.target or args.clients / 2)
                wakes = [
                    from_zero(url, clients, ENDPOINT, TARGET, warm=20)
                    for _ in range(args.zero_only)
                ]
                firsts = sorted(w[0] for w in wakes)
                print(f"first answer from zero, {len(firsts)} wakes: median "
                      f"{statistics.median(firsts) * 1e3:.0f} ms, each "
                      f"{', '.join(f'{f * 1e3:.0f}' for f in firsts)} ms "
                      f"(goal <= {ZERO_GOAL_S * 1e3:.0f} ms); a warm answer "
                      f"{statistics.median(w[1] for w in wakes) * 1e3:.2f} ms")  # fmt: skip
                for _, _, moments in wakes:
                    print(f"  ms after the request: {moments_line(moments)}")
                return
            result = experiment(url, args, clients)
            zero = from_zero(url, clients, ENDPOINT, TARGET, warm=20)
            activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker")
        report(result, args, zero)
        print("\nscaling activities (oldest first):")
        for activity in reversed(activities["ScalingActivities"]):
            print(f"  {activity['StatusCode']:<11} {activity['Description']} "
                  f"{activity['Cause'][:150]}")  # fmt: skip


if __name__ == "__main__":
    main()
