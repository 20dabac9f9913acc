"""Benchmark: the scikit-learn container vs the same model in a minimal starlette app.

Both servers run as separate processes with uvicorn (uvloop + httptools) on this machine; one
aiohttp load client sends one 20-feature CSV row per request, at concurrency 1 and 16, for a fixed
time each, alternating the servers so that drift in machine load hits both. Prints p50/p99 latency
and req/s of each and the ratios container/baseline (goal: p50 ratio <= 1.2, req/s ratio >= 0.8).

    .venv/bin/python benchmarks/container.py [--seconds 5] [--model logreg|forest] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 20
sys.path.insert(0, str(ROOT))

from benchmarks.servers import free_port, process  # noqa: E402

# --- the baseline: the model called in-process by a minimal starlette app --------------------


def baseline_app(model_dir: Path) -> Any:
    import joblib
    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    model = joblib.load(model_dir / "model.joblib")

    async def ping(request: Request) -> Response:
        return Response()

    async def invocations(request: Request) -> Response:
        body = await request.body()
        rows = [line.split(",") for line in body.decode().splitlines() if line]
        prediction = model.predict(np.array(rows, dtype=np.float64))
        return Response(json.dumps(prediction.tolist()), media_type="application/json")

    return Starlette(
        routes=[Route("/ping", ping), Route("/invocations", invocations, methods=["POST"])]
    )


def serve_baseline(model_dir: Path, port: int) -> None:
    import uvicorn
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    uvicorn.run(
        baseline_app(model_dir),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- setup ---------------------------------------------------------------------------------------


def train(kind: str, model_dir: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, FEATURES))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    if kind == "forest":
        model: Any = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0)
    else:
        model = LogisticRegression(max_iter=500)
    model.fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    tarball = model_dir.parent / "model.tar.gz"  # packaged and unpacked the SageMaker way
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with tarfile.open(tarball) as tar:
        tar.extractall(model_dir, filter="data")


# --- the load client -----------------------------------------------------------------------------


async def load(
    url: str, body: bytes, concurrency: int, seconds: float
) -> tuple[list[float], float]:
    import aiohttp

    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> float:
            start = time.perf_counter()
            async with session.post(url + "/invocations", data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
            return time.perf_counter() - start

        async def worker(stop: float, record: bool) -> None:
            while time.perf_counter() < stop:
                elapsed = await one()
                if record:
                    latencies.append(elapsed)

        warm = time.perf_counter() + min(1.0, seconds / 4)
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(begin + seconds, True) for _ in range(concurrency)))
        wall = time.perf_counter() - begin
    return latencies, len(latencies) / wall


def summary(latencies: list[float], rps: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "rps": rps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two servers")
    parser.add_argument("--model", choices=("logreg", "forest"), default="logreg")
    parser.add_argument("--workers", type=int, default=1, help="the container's processes")
    parser.add_argument("--baseline-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server is not None:
        serve_baseline(args.baseline_server, args.port)
        return

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        train(args.model, model_dir)
        row = np.random.default_rng(1).normal(size=FEATURES)
        body = (",".join(repr(float(v)) for v in row) + "\n").encode()
        one_thread = {"TANDEM_INTRA_OP_THREADS": "1", "TANDEM_INTER_OP_THREADS": "1"}
        c_port, b_port = free_port(), free_port()
        container, baseline = f"http://127.0.0.1:{c_port}", f"http://127.0.0.1:{b_port}"
        container_cmd = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
        container_env = {
            **one_thread,
            "SM_MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(c_port),
            "TANDEM_CONTAINER_HOST": "127.0.0.1",
            "TANDEM_LOG_LEVEL": "warning",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(args.workers),
        }
        baseline_cmd = [
            sys.executable,
            __file__,
            "--baseline-server",
            str(model_dir),
            "--port",
            str(b_port),
        ]
        results: dict[tuple[str, int], tuple[list[float], float]] = {}
        with (
            process(container_cmd, container_env, f"{container}/ping"),
            process(baseline_cmd, one_thread, f"{baseline}/ping"),
        ):
            for _ in range(args.rounds):
                for concurrency in (1, 16):
                    for name, url in (("container", container), ("baseline", baseline)):
                        lat, rps = asyncio.run(load(url, body, concurrency, args.seconds))
                        old_lat, old_rps = results.get((name, concurrency), ([], 0.0))
                        results[(name, concurrency)] = (old_lat + lat, old_rps + rps / args.rounds)

    print(
        f"model: {args.model}, {FEATURES}-feature CSV row, {args.seconds:g}s x {args.rounds} "
        f"rounds, container on {args.workers} worker process(es), baseline on one"
    )
    print(f"{'concurrency':>11} {'server':>10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9}")
    for concurrency in (1, 16):
        rows = {name: summary(*results[(name, concurrency)]) for name in ("container", "baseline")}
        for name, row_ in rows.items():
            print(
                f"{concurrency:>11} {name:>10} {row_['p50_ms']:>8.3f} {row_['p99_ms']:>8.3f} "
                f"{row_['rps']:>9.0f}"
            )
        c, b = rows["container"], rows["baseline"]
        print(
            f"{concurrency:>11} {'ratio':>10} {c['p50_ms'] / b['p50_ms']:>8.2f} "
            f"{c['p99_ms'] / b['p99_ms']:>8.2f} {c['rps'] / b['rps']:>9.2f}"
        )
    print("goal: p50 ratio <= 1.2, req/s ratio >= 0.8")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
