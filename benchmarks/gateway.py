"""What one gateway hop costs: the same container called straight and through the gateway.

    python benchmarks/gateway.py [--duration 5] [--container auto|sklearn|contract]

Starts one container (the real scikit-learn container with a 20-feature model when it exists, else
the standard-library contract server), then one gateway process per upstream client (aiohttp,
httpx), and drives each with ``wrk`` (or, without wrk, an aiohttp load generator in its own
process). Prints, from one run, concurrency-1 p50/p99 and concurrency-16 req/s, straight vs through
the gateway, and a 3-step Serial chain against the sum of its steps. Ratios, not absolute times,
are the result: the machine changes them all alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_SERVER = ROOT / "tests" / "gateway" / "contract_server.py"
FEATURES = 20


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode} before {url} was ready")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready within {timeout}s")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, start_new_session=True)
    try:
        wait_ready(ready_url, proc)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sklearn_available() -> bool:
    check = "import sklearn, joblib, containers.sklearn, containers.__main__"
    return subprocess.run([sys.executable, "-c", check], capture_output=True).returncode == 0


def build_sklearn_model(model_dir: Path) -> None:
    """A 20-feature logistic regression, trained in a child so this script stays framework-free."""
    code = (
        "import sys, joblib, numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        f"X = np.random.default_rng(0).normal(size=(500, {FEATURES}))\n"
        "y = (X[:, 0] + X[:, 1] > 0).astype(int)\n"
        "joblib.dump(LogisticRegression().fit(X, y), sys.argv[1] + '/model.joblib')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(model_dir)], check=True)


@contextlib.contextmanager
def container(kind: str, workdir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = {"SAGEMAKER_BIND_TO_PORT": str(port), **env}
    if kind == "sklearn":
        model_dir = workdir / "model"
        model_dir.mkdir(exist_ok=True)
        build_sklearn_model(model_dir)
        args = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
        base.update(SM_MODEL_DIR=str(model_dir), SAGEMAKER_MODEL_SERVER_WORKERS="1")
    else:
        args = [sys.executable, str(CONTRACT_SERVER)]
    with process(args, base, f"{url}/ping"):
        yield url


@contextlib.contextmanager
def gateway(upstream: str, endpoints: dict[str, list[str]]) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, __file__, "_gateway", str(port), upstream, json.dumps(endpoints)]
    with process(args, {}, f"http://127.0.0.1:{port}/ping"):
        yield f"http://127.0.0.1:{port}"


def serve_gateway(port: int, upstream: str, endpoints: dict[str, list[str]]) -> None:
    """Child process: the gateway app as ``tandem serve`` runs it (uvloop, httptools)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.runtime import ContainerState, EndpointRuntime
    from gateway.settings import GatewaySettings
    from pipelines.spec import EndpointSpec

    runtimes = []
    for name, urls in endpoints.items():
        spec = EndpointSpec(name=name, containers=[{"command": ["bench"]} for _ in urls])  # type: ignore[misc]
        runtime = EndpointRuntime.from_spec(spec)
        for c, url in zip(runtime.containers, urls, strict=True):
            c.url, c.state = url, ContainerState.HEALTHY
        runtimes.append(runtime)
    app = create_app(runtimes, GatewaySettings(upstream=upstream))  # type: ignore[arg-type]
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


# --- load generation ------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    url: str, body: bytes, content_type: str, concurrency: int, duration: float, workdir: Path
) -> Load:
    script = workdir / "post.lua"
    lua_body = "".join(f"\\{b}" for b in body)
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{lua_body}"\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    threads = 1 if concurrency == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors while loading {url}:\n{out}")

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * _UNITS[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return Load(pct("50"), pct("99"), float(rps.group(1)))


def aiohttp_load(
    url: str, body: bytes, content_type: str, concurrency: int, duration: float, workdir: Path
) -> Load:
    """Fallback load generator: a child process, so it does not share the gateway's CPU time."""
    args = [
        sys.executable,
        __file__,
        "_load",
        url,
        body.hex(),
        content_type,
        str(concurrency),
        str(duration),
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return Load(**json.loads(out))


def run_load(url: str, body: bytes, content_type: str, concurrency: int, duration: float) -> None:
    import asyncio

    import aiohttp

    async def main() -> Load:
        latencies: list[float] = []
        headers = {"Content-Type": content_type}
        async with aiohttp.ClientSession() as session:
            end = time.perf_counter() + duration

            async def worker() -> None:
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()
                        if r.status != 200:
                            raise SystemExit(f"{url} answered {r.status}")
                    latencies.append(time.perf_counter() - t)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return Load(
            latencies[len(latencies) // 2] * 1e3,
            latencies[int(len(latencies) * 0.99)] * 1e3,
            len(latencies) / elapsed,
        )

    print(json.dumps(asyncio.run(main()).__dict__))


# --- the run --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--container", choices=["auto", "sklearn", "contract"], default="auto")
    parser.add_argument("--upstreams", default="aiohttp,httpx")
    parser.add_argument("--no-chain", action="store_true", help="skip the 3-step Serial chain")
    args = parser.parse_args()
    kind = args.container
    if kind == "auto":
        kind = "sklearn" if sklearn_available() else "contract"
    measure = wrk if shutil.which("wrk") else aiohttp_load
    if kind == "sklearn":
        body = (",".join(["0.5"] * FEATURES)).encode()
        content_type = "text/csv"
    else:
        body, content_type = b'{"instances": [[1, 2, 3]]}', "application/json"
    duration = args.duration
    print(
        f"container: {kind}; load: {measure.__name__}; {duration:g}s per measurement; "
        f"{os.cpu_count()} CPUs"
    )

    with tempfile.TemporaryDirectory() as tmp, container(kind, Path(tmp)) as url:
        work = Path(tmp)

        def both(target: str, label: str, results: dict[str, tuple[Load, Load]]) -> None:
            measure(target, body, content_type, 4, 1.0, work)  # warm up pools and caches
            c1 = measure(target, body, content_type, 1, duration, work)
            c16 = measure(target, body, content_type, 16, duration, work)
            results[label] = (c1, c16)

        results: dict[str, tuple[Load, Load]] = {}
        both(f"{url}/invocations", "direct", results)
        for upstream in args.upstreams.split(","):
            with gateway(upstream, {"one": [url]}) as gw:
                both(f"{gw}/endpoints/one/invocations", f"gateway ({upstream})", results)

        base1, base16 = results["direct"]
        print(
            f"\n{'':22}{'c=1 p50 ms':>11}{'p99 ms':>9}{'added p50':>11}{'c=16 req/s':>12}"
            f"{'ratio':>7}"
        )
        for label, (c1, c16) in results.items():
            added = f"{c1.p50_ms - base1.p50_ms:+.3f}" if label != "direct" else ""
            ratio = f"{c16.rps / base16.rps:.2f}" if label != "direct" else ""
            print(
                f"{label:22}{c1.p50_ms:11.3f}{c1.p99_ms:9.3f}{added:>11}{c16.rps:12.0f}{ratio:>7}"
            )

        if not args.no_chain:
            chain_vs_steps(work, measure, duration, args.upstreams.split(",")[0])


def chain_vs_steps(work: Path, measure: object, duration: float, upstream: str) -> None:
    """A 3-step Serial chain of echo containers vs the sum of calling each step straight."""
    body, content_type = b"1,2,3,4,5", "text/csv"
    assert callable(measure)
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(container("contract", work, CONTRACT_MARKER="")) for _ in range(3)
        ]
        steps = []
        for url in urls:
            measure(f"{url}/invocations", body, content_type, 1, 1.0, work)
            steps.append(measure(f"{url}/invocations", body, content_type, 1, duration, work))
        gw = stack.enter_context(gateway(upstream, {"chain": urls}))
        target = f"{gw}/endpoints/chain/invocations"
        measure(target, body, content_type, 1, 1.0, work)
        chain = measure(target, body, content_type, 1, duration, work)
    total = sum(s.p50_ms for s in steps)
    print(
        f"\n3-step Serial chain ({upstream}, echo contract containers), c=1 p50: "
        f"chain {chain.p50_ms:.3f} ms vs sum of steps {total:.3f} ms "
        f"(gateway adds {chain.p50_ms - total:+.3f} ms for the whole chain)"
    )
    print("MLServer comparison: not run (MLServer is not installed in this environment).")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_gateway":
        sys.path.insert(0, str(ROOT))
        serve_gateway(int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_load":
        _, _, url, hexbody, ctype, conc, dur = sys.argv
        run_load(url, bytes.fromhex(hexbody), ctype, int(conc), float(dur))
    else:
        main()
