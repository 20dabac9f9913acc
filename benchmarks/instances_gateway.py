"""Part 2 of ``benchmarks/instances.py`` through a real ``tandem serve`` (``--real``).

Two endpoints of two instances each, one routed by least outstanding requests and one at random
(round robin is no longer in the gateway; random spreads the same way on average), every
instance a small standard-library server that answers one request at a time (a lock: requests
wait their turn, as on a model server with one worker), 200 ms for a body ``slow`` and 1 ms
otherwise. An open-loop Poisson stream, 1 request in 20 slow, is sent to each endpoint in turn,
the same stream for both; the fast requests' p95 and p99 are compared, and the same times with
no slow request at all give the floor that the machine and the load generator add.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from benchmarks.servers import free_port, process

SERVER = """
import os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:  # one at a time
            time.sleep(0.2 if body.startswith(b"slow") else 0.001)
        self.answer(body)


port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

STRATEGIES = {"least outstanding": "LEAST_OUTSTANDING_REQUESTS", "random": "RANDOM"}


def specs(folder: Path) -> list[Path]:
    server = folder / "serial_server.py"
    server.write_text(SERVER)
    paths = []
    for strategy in STRATEGIES.values():
        spec = {
            "name": strategy.lower().replace("_", "-"),
            "instance_count": 2,
            "routing_strategy": strategy,
            "containers": [{"command": [sys.executable, str(server)]}],
        }
        path = folder / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec))
        paths.append(path)
    return paths


async def stream(url: str, arrivals: list[tuple[float, bool]]) -> list[float]:
    """Send each request at its time; the fast ones' latencies in seconds."""
    fast: list[float] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(slow: bool) -> None:
            started = time.perf_counter()
            answer = await client.post(url, content=b"slow" if slow else b"fast")
            answer.raise_for_status()
            if not slow:
                fast.append(time.perf_counter() - started)

        start = time.perf_counter()
        tasks = []
        for at, slow in arrivals:
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(slow)))
        await asyncio.gather(*tasks)
    return fast


def run(rate: float, duration: float, seed: int) -> dict[str, tuple[float, float]]:
    """The fast requests' p95 and p99 (seconds) per strategy, the same stream for each."""
    rng = random.Random(seed)
    arrivals, now = [], 0.0
    while now < duration:
        now += rng.expovariate(rate)
        arrivals.append((now, rng.random() < 0.05))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        args = [sys.executable, "-m", "gateway", "serve", *map(str, specs(folder))]
        args += ["--state-dir", str(folder / "state"), "--port", str(port)]
        base = f"http://127.0.0.1:{port}"
        with process(args, {}, f"{base}/ping"):
            runs = [(name, strategy, arrivals) for name, strategy in STRATEGIES.items()]
            # The floor: the same times, nothing slow (what the machine and the client add).
            runs.append(
                (
                    "no slow requests",
                    "LEAST_OUTSTANDING_REQUESTS",
                    [(t, False) for t, _ in arrivals],
                )
            )
            for name, strategy, sent in runs:
                endpoint = strategy.lower().replace("_", "-")
                url = f"{base}/endpoints/{endpoint}/invocations"
                fast = sorted(asyncio.run(stream(url, sent)))
                out[name] = (fast[int(0.95 * len(fast))], fast[int(0.99 * len(fast))])
    return out
