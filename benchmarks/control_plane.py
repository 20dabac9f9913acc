"""What the control plane costs, measured in one run: an update under load, a create, the hot path.

    .venv/bin/python benchmarks/control_plane.py [--duration 5] [--rounds 3] [--rate 200] [--quick]

A real ``tandem serve`` serves a scikit-learn endpoint created through boto3's ``sagemaker``
client: a logistic regression trained here on synthetic data, in a SageMaker ``model.tar.gz``
beside the state folder (never in it: no model root includes it), ``Image: sklearn``. One
20-feature CSV row per request.

1. **UpdateEndpoint under load**: a fixed request rate from a load generator in its own process
   (open loop: each request goes at its scheduled time and its latency counts from then), then an
   update to a model trained on inverted labels (its answer differs). Requests sent and failed;
   the p99 before against the longest request in flight from the call until the old container is
   gone; when the answers switched.
2. **CreateEndpoint to InService** (DescribeEndpoint every 50 ms) against the same container
   started by hand with the backend's environment, until ``/ping`` is 200 (polled alike).
3. **The hot path**: c=1 p50, c=16 req/s and the gateway's CPU per request through ``tandem
   serve`` (control plane mounted, botocore's model loaded) and through a bare ``create_app``
   gateway (no control-plane module imported), both to the same container; ``wrk`` (or an aiohttp
   load), alternating rounds, medians.

The load generator of 1. and the bare gateway of 3. are child processes
(benchmarks/control_plane_children.py). Ratios are the result; absolute times move with the
machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.control_plane_children import Sample  # noqa: E402
from benchmarks.gateway import CSV, FEATURES, ROW, free_port, post, process  # noqa: E402
from benchmarks.loadgen import Measure, Target, aiohttp_load, wrk  # noqa: E402

POLL = 0.05
#: The module the load generator and the bare gateway run from, each in a process of its own.
CHILDREN = "benchmarks.control_plane_children"
#: Green is blue trained on inverted labels, so the two answer the benchmark's row differently.
TRAIN = """
import json, sys, tarfile, joblib, numpy as np
from pathlib import Path
from sklearn.linear_model import LogisticRegression
X = np.random.default_rng(0).normal(size=(500, %d))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
answers = {}
for name, labels in (("blue", y), ("green", 1 - y)):
    model = LogisticRegression().fit(X, labels)
    folder = Path(sys.argv[1], name)
    (folder / "unpacked").mkdir(parents=True)  # what the by-hand start gets as its model dir
    joblib.dump(model, folder / "unpacked" / "model.joblib")
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        tar.add(folder / "unpacked" / "model.joblib", arcname="model.joblib")
    answers[name] = int(model.predict(np.array([%r]))[0])
print(json.dumps(answers))
"""


# --- the control plane, through boto3 -------------------------------------------------------------


def control_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 0}, read_timeout=60, connect_timeout=5)
    keys = {"aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"}
    return boto3.client("sagemaker", endpoint_url=url, config=config, **keys)


def deploy(control: Any, name: str, tarball: Path) -> None:
    """A model and an endpoint config, both called ``name``."""
    container = {"Image": "sklearn", "ModelDataUrl": str(tarball)}
    control.create_model(ModelName=name, PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}
    control.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])


def wait_status(control: Any, name: str, wanted: str, timeout: float = 180.0) -> float:
    """Poll DescribeEndpoint every 50 ms; the monotonic time ``wanted`` (or "Deleted") was seen."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = control.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError:
            status = "Deleted"
        if status == wanted:
            return time.monotonic()
        if status == "Failed":
            reason = control.describe_endpoint(EndpointName=name).get("FailureReason")
            raise SystemExit(f"{name} failed: {reason}")
        time.sleep(POLL)
    raise SystemExit(f"{name} not {wanted} within {timeout:g}s")


def container_url(gateway: str, endpoint: str) -> str:
    with urllib.request.urlopen(f"{gateway}/endpoints/{endpoint}", timeout=10) as answer:
        (container,) = json.load(answer)["Containers"]
    return str(container["Url"])


def wait_closed(url: str, timeout: float = 60.0) -> float:
    """The monotonic time ``url``'s port stopped accepting connections (its container is gone)."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return time.monotonic()
        time.sleep(0.01)
    raise SystemExit(f"{url} still answers {timeout:g}s later")


# --- 1. UpdateEndpoint under load ----------------------------------------------------------------


def update_under_load(gateway: str, control: Any, rate: float, duration: float) -> None:
    old_container = container_url(gateway, "live")
    old = post(f"{gateway}/endpoints/live/invocations", CSV, "text/csv").decode()
    url = f"{gateway}/endpoints/live/invocations"
    args = [sys.executable, "-m", CHILDREN, "_load", url, str(rate)]
    loader = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True
    )
    assert loader.stdin is not None and loader.stdout is not None
    try:
        if loader.stdout.readline() != b"ready\n":
            raise SystemExit("the load generator did not start")
        time.sleep(duration)  # the load before the update
        called = time.monotonic()
        control.update_endpoint(EndpointName="live", EndpointConfigName="green")
        in_service = wait_status(control, "live", "InService")
        described = control.describe_endpoint(EndpointName="live")
        if described["EndpointConfigName"] != "green" or described.get("FailureReason"):
            raise SystemExit(f"the update did not happen: {described.get('FailureReason')}")
        old_gone = wait_closed(old_container)
        time.sleep(duration)  # and after it
        loader.stdin.close()
        samples = [Sample(*row) for row in json.loads(loader.stdout.read())]
    finally:
        if loader.poll() is None:
            loader.terminate()
        loader.wait()
    ok = [s for s in samples if s.status == 200]
    errors = sorted({f"{s.status} {s.answer[:80]}" for s in samples if s.status != 200})
    seconds = max(s.at for s in samples) - min(s.at for s in samples)
    print(
        f"requests sent {len(samples)} over {seconds:.1f} s ({len(samples) / seconds:.0f} req/s, "
        f"asked {rate:g}), failed {len(samples) - len(ok)} (goal 0){': ' * bool(errors)}"
        + "; ".join(errors[:5])
    )
    new = sorted({s.answer for s in ok} - {old})
    print(f"answers: old model {old!r}, new model {', '.join(map(repr, new)) or 'none seen'}")
    before = sorted(s.latency for s in samples if s.at + s.latency < called)
    p99 = before[math.ceil(0.99 * len(before)) - 1]  # nearest rank
    during = [s.latency for s in samples if s.at < old_gone and s.at + s.latency > called]
    print(
        f"before the update: p50 {statistics.median(before) * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms;"
        f" during the switch (UpdateEndpoint call to the old container gone, {len(during)} "
        f"requests): longest {max(during) * 1e3:.2f} ms, {max(during) / p99:.1f}x the p99 before"
    )
    first_new = min((s.at for s in ok if s.answer != old), default=math.nan)
    print(
        f"after UpdateEndpoint: last old answer sent at "
        f"+{max(s.at for s in ok if s.answer == old) - called:.3f} s, first new at "
        f"+{first_new - called:.3f} s ({sum(s.answer == old and s.at > first_new for s in ok)} "
        f"old answers sent after the first new: in flight at the swap); InService seen at "
        f"+{in_service - called:.3f} s; old container gone at +{old_gone - called:.3f} s"
    )


# --- 2. CreateEndpoint to InService, against the container started by hand -----------------------


def create_to_in_service(control: Any, name: str, gateway: str, answer: bytes) -> float:
    started = time.monotonic()
    control.create_endpoint(EndpointName=name, EndpointConfigName="blue")
    seconds = wait_status(control, name, "InService") - started
    assert post(f"{gateway}/endpoints/{name}/invocations", CSV, "text/csv") == answer
    control.delete_endpoint(EndpointName=name)
    wait_status(control, name, "Deleted")
    return seconds


def by_hand(model_dir: Path, base_dir: Path, answer: bytes) -> float:
    """The container with the environment the process backend gives it, until /ping is 200."""
    port = free_port()
    base_dir.mkdir(exist_ok=True)
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.getenv("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.getenv("PYTHONPATH", "")]),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "TANDEM_CONTAINER_HOST": "127.0.0.1",
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BASE_DIR": str(base_dir),
        "PYTHONUNBUFFERED": "1",
    }
    args = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with process(args, env, f"{url}/ping"):  # polls /ping every 50 ms, as wait_status does
        seconds = time.monotonic() - started
        assert post(f"{url}/invocations", CSV, "text/csv") == answer
    return seconds


# --- 3. the hot path, with and without the control plane ----------------------------------------


def listener(url: str) -> int:
    """The pid of this run's child process that listens on ``url``'s port."""
    import psutil

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(c.status == "LISTEN" and c.laddr.port == port for c in child.net_connections()):
                return int(child.pid)
    raise SystemExit(f"no child process listens on {url}")


def hot_path(
    targets: dict[str, str], measure: Measure, rounds: int, duration: float, work: Path
) -> dict[str, tuple[float, ...]]:
    """Per gateway (label -> invocations URL): medians of c=1 p50 ms, c=16 req/s and the
    gateway process's CPU µs per request at c=16 (less moved than latency by a busy machine)."""
    import psutil

    procs = {label: psutil.Process(listener(url)) for label, url in targets.items()}
    for label, url in targets.items():
        measure(Target(label, url, CSV, "text/csv"), 4, 1.0, work)  # warm pools and caches alike
    runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in targets}
    for number in range(rounds):
        print(f"round {number + 1} of {rounds} ...", flush=True)
        order = list(targets.items())
        for label, url in order if number % 2 == 0 else order[::-1]:  # drift hits both alike
            target = Target(label, url, CSV, "text/csv")
            p50 = measure(target, 1, duration, work).p50_ms
            cpu = sum(procs[label].cpu_times()[:2])
            load = measure(target, 16, duration, work)
            used = sum(procs[label].cpu_times()[:2]) - cpu
            requests = load.rps * max(1, round(duration))  # wrk's whole seconds
            runs[label].append((p50, load.rps, used / requests * 1e6))
    return {
        label: tuple(map(statistics.median, zip(*rs, strict=True))) for label, rs in runs.items()
    }


# --- the run --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds per measurement (5; quick: 1)")
    parser.add_argument("--rounds", type=int, help="rounds of 2. and 3.; medians (3; quick: 1)")
    parser.add_argument("--rate", type=float, default=200.0, help="req/s of 1. (%(default)g)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    measure: Measure = wrk if shutil.which("wrk") else aiohttp_load
    print(
        f"one {FEATURES}-feature CSV row; {args.rate:g} req/s during the update; hot path load: "
        f"{measure.__name__}; {duration:g}s per measurement; {rounds} round(s), medians; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        state = work / "state"
        models = work / "models"  # a model root of its own: the state folder never is one
        code = TRAIN % (FEATURES, ROW)
        run = subprocess.run(
            [sys.executable, "-c", code, str(models)], stdout=subprocess.PIPE, check=True
        )
        trained = json.loads(run.stdout)
        assert trained["blue"] != trained["green"], trained
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "gateway", "serve", "--state-dir", str(state)]
        serve += ["--port", str(port)]
        env = {"TANDEM_LOG_LEVEL": "warning", "TANDEM_MODEL_ROOTS": str(models)}
        stack.enter_context(process(serve, env, f"{gateway}/ping"))
        control = control_client(gateway)
        for name in ("blue", "green"):
            deploy(control, name, models / name / "model.tar.gz")
        control.create_endpoint(EndpointName="live", EndpointConfigName="blue")
        wait_status(control, "live", "InService")
        blue = post(f"{gateway}/endpoints/live/invocations", CSV, "text/csv")

        print("\n1. UpdateEndpoint under load ...", flush=True)
        update_under_load(gateway, control, args.rate, duration)

        print("\n2. CreateEndpoint to InService, against the container started by hand ...")
        hand_model = models / "blue" / "unpacked"
        created: list[float] = []
        started: list[float] = []
        for number in range(rounds):
            hand_first = number % 2 == 1  # alternating which goes first
            if hand_first:
                started.append(by_hand(hand_model, work / "hand", blue))
            created.append(create_to_in_service(control, f"fresh-{number}", gateway, blue))
            if not hand_first:
                started.append(by_hand(hand_model, work / "hand", blue))
        report_create(created, started)

        print("\n3. The hot path with and without the control plane ...", flush=True)
        port = free_port()
        bare = f"http://127.0.0.1:{port}"
        child = [sys.executable, "-m", CHILDREN, "_bare", str(port), container_url(gateway, "live")]
        stack.enter_context(process(child, {}, f"{bare}/ping"))
        path = "/endpoints/live/invocations"
        assert post(bare + path, CSV, "text/csv") == post(gateway + path, CSV, "text/csv")
        targets = {"without: bare gateway app": bare + path, "with: tandem serve": gateway + path}
        report_hot_path(hot_path(targets, measure, rounds, duration, work))


def report_create(created: list[float], started: list[float]) -> None:
    gateway, hand = statistics.median(created), statistics.median(started)
    for label, median, runs in (
        ("CreateEndpoint to InService", gateway, created),
        ("container by hand to /ping 200", hand, started),
    ):
        print(f"{label:32}{median:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in runs)})")
    print(f"ratio {gateway / hand:.2f}x; the control plane's overhead {gateway - hand:+.2f} s")


def report_hot_path(results: dict[str, tuple[float, ...]]) -> None:
    print(f"{'gateway':30}{'c=1 p50 ms':>12}{'c=16 req/s':>12}{'CPU µs/request':>16}")
    for label, (p50, rps, cpu) in results.items():
        print(f"{label:30}{p50:12.3f}{rps:12.0f}{cpu:16.0f}")
    (p50_0, rps_0, cpu_0), (p50_1, rps_1, cpu_1) = results.values()
    print(
        f"with / without: c=1 p50 {p50_1 / p50_0:.2f}, c=16 req/s {rps_1 / rps_0:.2f}, "
        f"CPU per request {cpu_1 / cpu_0:.2f} (goal ~1.0 each)"
    )


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
