"""The hot path with the ledger and without, through a real gateway: benchmarks/usage.py's part 3.

A gateway child serves one endpoint over the stdlib contract container (echo) with a metric
store flushed every second into a real state database, the ``UsageService`` tapping it or not.
Until the invocation core calls the recorder, a thin ASGI wrapper records each answered request
as the core will (``recorder.invocation``, a ``TargetModel`` drawn from 1,000 by Zipf so that the
ledger folds a realistic spread of models). An aiohttp client in its own process drives c=16.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.loadgen import Target, aiohttp_load
from benchmarks.servers import ROOT, free_port, process

CONTRACT_SERVER = ROOT / "tests" / "gateway" / "contract_server.py"
FLUSH_SECONDS = 1.0


def recording(app: Any, recorder: Any, names: list[str]) -> Any:
    """``app`` with each finished request recorded as the invocation core records it."""
    rng = random.Random(3)
    weights = [1 / (rank + 1) for rank in range(len(names))]
    picks = iter(rng.choices(names, weights, k=2_000_000))

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/invocations"):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        await app(scope, receive, send)
        micros = int((time.perf_counter() - started) * 1e6)
        recorder.invocation("bench", "AllTraffic", next(picks), "2xx", micros, 50, 64, 64)

    return wrapped


def serve_child(port: int, container: str, ledger: bool, state: str) -> None:
    """Child process: the gateway app, its metric store and (``ledger``) the usage ledger."""
    from gateway.cloudwatch import MetricService
    from gateway.edge.app import create_app
    from gateway.edge.server import bind, loop_factory, make_server
    from gateway.live import ContainerState, Instance
    from gateway.settings import GatewaySettings
    from gateway.usage import UsageService
    from pipelines.spec import EndpointSpec

    spec = EndpointSpec(name="bench", containers=[{"command": ["bench"]}])  # type: ignore[list-item]
    runtime = Instance.from_spec(spec)
    runtime.containers[0].url, runtime.containers[0].state = container, ContainerState.HEALTHY
    settings = GatewaySettings(port=port, log_level="warning", state_dir=Path(state))
    metrics = MetricService.from_settings(settings)
    if ledger:
        UsageService.from_settings(settings, metrics)

    def flusher() -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            metrics.flush()

    threading.Thread(target=flusher, daemon=True).start()
    names = [f"customer-{i:04d}.tar.gz" for i in range(1000)]
    app = recording(create_app([runtime], settings), metrics.recorder, names)
    server = make_server(app, settings)
    with bind(settings.host, port) as sock, asyncio.Runner(loop_factory=loop_factory()) as run:
        run.run(server.serve(sockets=[sock]))


def measure(folder: Path, seconds: float, rounds: int) -> tuple[float, float]:
    """Median req/s at c=16 (without the ledger, with it), in alternating rounds."""
    cport = free_port()
    container = f"http://127.0.0.1:{cport}"
    rates: dict[bool, list[float]] = {False: [], True: []}
    with process([sys.executable, str(CONTRACT_SERVER)], {"SAGEMAKER_BIND_TO_PORT": str(cport)},
                 f"{container}/ping"):  # fmt: skip
        for r in range(rounds):
            for ledger in (False, True) if r % 2 == 0 else (True, False):
                port = free_port()
                state = folder / f"gateway-{r}-{ledger}"
                args = [sys.executable, "-m", "benchmarks.usage_gateway", str(port), container]
                url = f"http://127.0.0.1:{port}"
                with process([*args, "1" if ledger else "0", str(state)], {}, f"{url}/ping"):
                    target = Target("bench", f"{url}/endpoints/bench/invocations", b"x" * 64,
                                    "application/octet-stream")  # fmt: skip
                    aiohttp_load(target, 16, 0.5, folder)  # warm
                    rates[ledger].append(aiohttp_load(target, 16, seconds, folder).rps)
    return sorted(rates[False])[len(rates[False]) // 2], sorted(rates[True])[len(rates[True]) // 2]


if __name__ == "__main__":
    _, port_text, container_url, with_ledger, state_dir = sys.argv
    serve_child(int(port_text), container_url, with_ledger == "1", state_dir)
