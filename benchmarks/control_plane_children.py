"""The child processes of ``benchmarks/control_plane.py``: the open-loop load generator of its
section 1 and the bare gateway of its section 3.

Each runs in a process of its own, started as ``python -m benchmarks.control_plane_children``
from the repository root: the load generator so that its schedule never waits on the parent's
DescribeEndpoint polling, the bare gateway so that its ``sys.modules`` can show that serving
loaded no control-plane code (``CONTROL_MODULES``). The parent reads the generator's ``Sample``s.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, NamedTuple

from benchmarks.gateway import CSV

#: What the bare gateway must not have imported: the control plane, its state, boto.
CONTROL_MODULES = ("gateway.control", "gateway.state", "gateway.lifecycle", "botocore", "boto3")


class Sample(NamedTuple):
    """One request of the load, as the generator prints it (a JSON list) and the parent reads it."""

    at: float  # scheduled send, time.monotonic() (one clock for every process on Linux)
    latency: float
    status: int
    answer: str


def serve_load(url: str, rate: float) -> None:
    """Child process: ``rate`` requests a second, each at its own time, until stdin closes."""
    import asyncio

    import aiohttp

    async def main() -> list[list[Any]]:
        samples: list[list[Any]] = []
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
        connector = aiohttp.TCPConnector(limit=512)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def send(at: float) -> None:
                status, answer = 0, ""
                try:
                    headers = {"Content-Type": "text/csv"}
                    async with session.post(url, data=CSV, headers=headers) as response:
                        answer = (await response.read()).decode(errors="replace")
                        status = response.status
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    answer = f"{type(exc).__name__}: {exc}"
                samples.append([at, time.monotonic() - at, status, answer[:200]])

            await send(time.monotonic())  # one connection open before the clock starts
            samples.clear()
            print("ready", flush=True)
            tasks: set[asyncio.Task[None]] = set()
            start, sent = time.monotonic(), 0
            while not stop.is_set():
                at = start + sent / rate
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                    continue
                sent += 1
                task = asyncio.create_task(send(at))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        return samples

    from gateway.edge.server import loop_factory  # uvloop, when there: finer timers

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        json.dump(runner.run(main()), sys.stdout)


def serve_bare(port: int, container: str) -> None:
    """Child process: endpoint ``live`` on ``container``, served as ``tandem serve`` serves it."""
    import asyncio

    from gateway.edge.app import create_app
    from gateway.edge.server import bind, loop_factory, make_server
    from gateway.live import ContainerState, Instance
    from gateway.settings import GatewaySettings
    from pipelines.spec import EndpointSpec

    spec = EndpointSpec(name="live", containers=[{"command": ["bench"]}])  # type: ignore[list-item]
    runtime = Instance.from_spec(spec)
    (slot,) = runtime.containers
    slot.url, slot.state = container, ContainerState.HEALTHY
    settings = GatewaySettings(port=port, log_level="warning")
    app = create_app([runtime], settings)
    loaded = sorted(m for m in sys.modules if m.startswith(CONTROL_MODULES))
    if loaded:
        raise SystemExit(f"the bare gateway loaded control-plane code: {loaded}")
    server = make_server(app, settings)
    with bind(settings.host, port) as sock, asyncio.Runner(loop_factory=loop_factory()) as run:
        run.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_load":
        serve_load(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "_bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
    else:
        usage = "python -m benchmarks.control_plane_children _load URL RATE | _bare PORT URL"
        raise SystemExit(f"usage: {usage}")
