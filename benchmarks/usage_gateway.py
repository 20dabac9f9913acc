"""The gateway part of ``benchmarks/usage.py``: a real gateway in front of a real container.

The gateway child is composed as ``tandem serve`` composes it (``gateway/serve.py``): the metric
store (``MetricService``, its background flusher every second), the data plane told of every
invocation (``DataPlane(..., cloudwatch=metrics.recorder)``), its instance gauges and, with the
ledger, the ``UsageService`` that taps the metric store and its ``GET /usage`` route. Behind it
one scikit-learn MultiModel container (``python -m containers serve``) over a folder store of
1,000 small trees. A client process drives it at c=16, each request's ``TargetModel`` drawn
from the 1,000 by Zipf, after one request to each model (so no load falls in the timed part).

Both gateways are up at once and driven in turn, so the neighbours' load falls alike on both.
The one with the ledger is also checked: its invocations per model against what the client
sent it, its model time against the container's own count of it (``GET /metrics`` there, taken
before and after each of its bursts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.servers import ROOT, free_port, process

ENDPOINT = "bench"
ROW = b"0.5" + b",0.5" * 19 + b"\n"  # benchmarks/multimodel_support.py's trees take 20 features
TARGET = "X-Amzn-SageMaker-Target-Model"


@dataclass
class Round:
    """One round's measure and, with the ledger, what it was checked against."""

    ledger: bool
    rps: float
    sent: dict[str, int]
    errors: int
    #: The gateway process's CPU seconds per request in the timed part (its flusher's too).
    cpu_per_request: float = 0.0
    #: The ledger's answer per model (with the ledger only).
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The container's own seconds per model, during the round (its ``GET /metrics``).
    own: dict[str, float] = field(default_factory=dict)
    #: The gateway's own measure of the container, the HTTP hop in (``ModelLatency``, its
    #: ``tandem_container_latency_seconds``).
    seen_s: float = 0.0


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=120) as answer:
        return str(answer.read().decode())


def container_seconds(url: str) -> dict[str, float]:
    """The container's own seconds per model so far (``tandem_container_invocation_seconds``)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(get(f"{url}/metrics"))
        if family.name == "tandem_container_invocation_seconds"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def gateway_seen(url: str) -> float:
    """``tandem_container_latency_seconds_sum``: the container's time as the gateway saw it."""
    total = 0.0
    for line in get(f"{url}/metrics").splitlines():
        if line.startswith("tandem_container_latency_seconds_sum{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def serve_child(port: int, container: str, store: str, ledger: bool, state: str) -> None:
    """Child process: the gateway as ``tandem serve`` composes it, with the ledger or without."""
    from gateway.cloudwatch import MetricService
    from gateway.edge.app import create_app
    from gateway.edge.server import bind, loop_factory, make_server
    from gateway.live import ContainerState, EndpointTable, build
    from gateway.serving.metric_calls import InstanceGauges
    from gateway.serving.plane import DataPlane
    from gateway.settings import GatewaySettings
    from gateway.usage import UsageService, usage_route
    from pipelines.spec import EndpointSpec

    spec = EndpointSpec.model_validate(
        {
            "name": ENDPOINT,
            "containers": [{"framework": "sklearn", "mode": "MultiModel", "model_data": store}],
        }
    )
    settings = GatewaySettings(
        port=port, log_level="warning", state_dir=Path(state), metric_flush_interval=1.0
    )
    (runtime,) = build([spec], settings.state_dir)  # its MultiModel limits, as serve's are
    runtime.containers[0].url, runtime.containers[0].state = container, ContainerState.HEALTHY
    metrics = MetricService.from_settings(settings)
    plane = DataPlane(EndpointTable([runtime]), settings, cloudwatch=metrics.recorder)
    metrics.sample_with(InstanceGauges(plane.table, settings.state_dir))
    usage = UsageService.from_settings(settings, metrics) if ledger else None
    routes = [usage_route(usage)] if usage is not None else []
    app = create_app(plane, settings, routes=routes)
    if usage is not None:
        plane.metrics.per_model(usage.top_models)
    server = make_server(app, settings)

    async def main() -> None:
        await metrics.start()
        try:
            await server.serve(sockets=[sock])
        finally:
            await metrics.aclose()
            if usage is not None:
                usage.close()

    (Path(state) / "pid").write_text(str(os.getpid()))
    with bind(settings.host, port) as sock, asyncio.Runner(loop_factory=loop_factory()) as run:
        run.run(main())


def load_child(url: str, names: list[str], concurrency: int, seconds: float, seed: int) -> None:
    """Child process: ``seconds`` of Zipf-drawn requests at ``concurrency`` (0 s: one request to
    each of ``names``); prints the rate and what was sent per model."""
    import aiohttp

    rng = random.Random(seed)
    if seconds > 0:
        weights = [1 / (rank + 1) for rank in range(len(names))]
        # Enough for 20,000 req/s: drawing millions would cost each burst seconds of CPU.
        picks = iter(rng.choices(names, weights, k=int(seconds * 20_000) + 1000))
    else:
        picks = iter(names)
    sent: dict[str, int] = {}
    errors = 0
    done = 0

    async def main() -> float:
        nonlocal errors, done
        async with aiohttp.ClientSession() as session:
            end = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal errors, done
                while seconds <= 0 or time.perf_counter() < end:
                    name = next(picks, None)
                    if name is None:
                        return
                    headers = {"Content-Type": "text/csv", TARGET: name}
                    async with session.post(url, data=ROW, headers=headers) as answer:
                        await answer.read()
                        errors += answer.status != 200
                    sent[name] = sent.get(name, 0) + 1
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return done / (time.perf_counter() - started)

    rps = asyncio.run(main())
    print(json.dumps({"rps": rps, "sent": sent, "errors": errors}))


def drive(url: str, names: list[str], seconds: float, seed: int) -> dict[str, Any]:
    args = [sys.executable, "-m", "benchmarks.usage_gateway", "load", url, str(seconds), str(seed)]
    out = subprocess.run(
        args, input="\n".join(names), capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    found: dict[str, Any] = json.loads(out)
    return found


def measure(
    folder: Path, seconds: float, rounds: int, models: int = 1000
) -> tuple[list[Round], Round]:
    """Two gateways up at once in front of one container, one with the ledger, one without,
    driven in turn (``rounds`` times each, the order alternating, so the neighbours' load
    falls alike on both); the timed bursts, and the ledger's check over all it served."""
    from benchmarks.multimodel_support import build_store
    from gateway.multimodel.targets import container_name

    store = folder / "store"
    names = build_store(store, models, 0.01, "customer")
    cport = free_port()
    container = f"http://127.0.0.1:{cport}"
    env = {
        "SAGEMAKER_BIND_TO_PORT": str(cport),
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_BASE_DIR": str(folder / "opt-ml"),
        "TANDEM_CONTAINER_HOST": "127.0.0.1",
        "TANDEM_INTRA_OP_THREADS": "1",
        "TANDEM_INTER_OP_THREADS": "1",
    }
    serve = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
    bursts: list[Round] = []
    check = Round(True, 0.0, {}, 0)
    own: dict[str, float] = {}

    def counted(url: str, ledger: bool, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``run()``, and for the ledger's gateway what it sent and the container's own time."""
        before = container_seconds(container) if ledger else {}
        done = run()
        if ledger:
            after = container_seconds(container)
            for c, total in after.items():
                own[c] = own.get(c, 0.0) + total - before.get(c, 0.0)
            for name, n in done["sent"].items():
                check.sent[name] = check.sent.get(name, 0) + n
        check.errors += done["errors"]
        return done

    with contextlib.ExitStack() as stack:
        stack.enter_context(process(serve, env, f"{container}/ping"))
        urls: dict[bool, str] = {}
        pids: dict[bool, psutil.Process] = {}
        for ledger in (False, True):
            port = free_port()
            state = folder / f"gateway-{ledger}"
            urls[ledger] = url = f"http://127.0.0.1:{port}"
            child = [sys.executable, "-m", "benchmarks.usage_gateway", "serve", str(port)]
            child += [container, str(store), "1" if ledger else "0", str(state)]
            stack.enter_context(process(child, {}, f"{url}/ping"))
            pids[ledger] = psutil.Process(int((state / "pid").read_text()))
            invoke = f"{url}/endpoints/{ENDPOINT}/invocations"
            # Every model loaded through this gateway's manager: no load is timed.
            counted(url, ledger, lambda invoke=invoke: drive(invoke, names, 0, 0))
        for r in range(rounds):
            for ledger in (False, True) if r % 2 == 0 else (True, False):
                invoke = f"{urls[ledger]}/endpoints/{ENDPOINT}/invocations"
                cpu = sum(pids[ledger].cpu_times()[:2])
                timed = counted(
                    urls[ledger], ledger, lambda i=invoke, r=r: drive(i, names, seconds, r + 1)
                )
                cpu = sum(pids[ledger].cpu_times()[:2]) - cpu
                burst = Round(ledger, timed["rps"], timed["sent"], timed["errors"])
                burst.cpu_per_request = cpu / max(sum(timed["sent"].values()), 1)
                bursts.append(burst)
        answer = json.loads(get(f"{urls[True]}/usage?by=model&since=2h"))
        check.groups = {g["model"]: g for g in answer["groups"] if g["model"]}
        check.own = {name: own.get(container_name(name), 0.0) for name in names}
        check.seen_s = gateway_seen(urls[True])
    return bursts, check


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        _, _, port_text, container_url, store_dir, with_ledger, state_dir = sys.argv
        serve_child(int(port_text), container_url, store_dir, with_ledger == "1", state_dir)
    else:
        _, _, target_url, seconds_text, seed_text = sys.argv
        load_child(
            target_url, sys.stdin.read().split("\n"), 16, float(seconds_text), int(seed_text)
        )
