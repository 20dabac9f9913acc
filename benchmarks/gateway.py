"""What the gateway costs, and how Tandem compares with MLServer, measured in one run.

    .venv/bin/python benchmarks/gateway.py [--duration 5] [--rounds 2] [--skip-mlserver]

Everything runs as separate processes on this machine and is loaded by ``wrk`` (or, without it,
an aiohttp load generator in its own process), one target at a time, alternating targets round
after round so that drift in the machine's load hits all alike; each figure is the median over
the rounds. Measured:

* one hop: the real scikit-learn container (logistic regression, 20 features, one CSV row) called
  straight and through the gateway with each upstream client: concurrency-1 p50/p99 and
  concurrency-16 req/s;
* a 3-step Serial chain of real scikit-learn containers (StandardScaler -> PCA -> logistic
  regression, each CSV in and out) against its steps called one after another by the same client,
  each with the body it gets inside the chain (and, for reference, each step alone under wrk);
* clients that open a new connection per request (``urllib``), against one kept-alive
  connection, both straight and through the gateway, interleaved request by request
  (benchmarks/connections.py): what the gateway adds to the p50 in each mode;
* MLServer 1.7.1 serving the same model (its own virtual environment, made on first run; see
  benchmarks/mlserver_peer.py), sent its natural request: the V2 inference protocol's JSON.

The gateway runs as ``tandem serve`` runs it (uvloop, the guarded httptools protocol; see
benchmarks/servers.py). Ratios are the result; absolute times move with the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import mlserver_peer  # noqa: E402
from benchmarks.connections import ConnectionCosts, connection_costs  # noqa: E402
from benchmarks.loadgen import Load, Measure, Target, aiohttp_load, sequence, wrk  # noqa: E402

# The server processes live in benchmarks/servers.py; the other benchmarks import them from here.
from benchmarks.servers import container, free_port, gateway, post, process  # noqa: E402
from benchmarks.servers import wait_ready as wait_ready  # noqa: E402

FEATURES = 20
ROW = [round(0.1 * (i % 7) - 0.3, 2) for i in range(FEATURES)]
CSV = ",".join(str(x) for x in ROW).encode()
# Goals (issue 3): per hop and per chain step, added p50 and req/s ratio; against MLServer.
HOP_P50_MS = 0.3
HOP_RPS_RATIO = 0.9
MLSERVER_RPS_RATIO = 2.0
P50_MS = 1.0
#: Issue 15: added p50 through the gateway for a client opening a new connection per request.
FRESH_HOP_P50_MS = 0.4

# Each step of the chain: what it fits on the previous step's output, and the method it serves.
CHAIN = (
    ("scaler", "StandardScaler()", "transform"),
    ("pca", "PCA(n_components=10)", "transform"),
    ("classifier", "LogisticRegression()", "predict"),
)
TRAIN = """
import sys, joblib, numpy as np
from pathlib import Path
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
X = np.random.default_rng(0).normal(size=(500, %d))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
for folder, estimator, method in %r:
    model = eval(estimator)
    Path(sys.argv[1], folder).mkdir(parents=True, exist_ok=True)
    if method == "transform":
        X = model.fit(X).transform(X)
    else:
        model.fit(X, y)
    joblib.dump(model, Path(sys.argv[1], folder, "model.joblib"))
"""


# --- models and the MLServer peer ----------------------------------------------------------------


def train(workdir: Path) -> Path:
    """The models, trained in a child so that this script stays framework-free."""
    models = workdir / "models"
    code = TRAIN % (FEATURES, CHAIN)
    subprocess.run([sys.executable, "-c", code, str(models)], check=True)
    # The one-hop model: the same logistic regression as MLServer's, on the raw 20 features.
    subprocess.run(
        [sys.executable, "-c", mlserver_peer.TRAIN, str(models), str(FEATURES)], check=True
    )
    return models


@contextlib.contextmanager
def mlserver(workdir: Path) -> Iterator[str]:
    interpreter = mlserver_peer.python()
    ports = (free_port(), free_port(), free_port())
    folder = workdir / "mlserver"
    mlserver_peer.prepare(folder, interpreter, FEATURES, ports)
    url = f"http://127.0.0.1:{ports[0]}"
    with process(mlserver_peer.command(interpreter, folder), {}, url + mlserver_peer.ready_path()):
        yield url


# --- the run --------------------------------------------------------------------------------------


def measure_all(
    targets: list[Target], measure: Measure, rounds: int, duration: float, work: Path
) -> dict[tuple[str, int], Load]:
    """Median per target and concurrency over ``rounds``, targets alternating within a round."""
    runs: dict[tuple[str, int], list[Load]] = {}
    for target in targets:
        measure(target, 4, 1.0, work)  # warm pools, caches and the JIT-less interpreter alike
    for number in range(rounds):
        print(f"round {number + 1} of {rounds} ...", flush=True)
        for target in targets:
            for c in target.concurrency:
                runs.setdefault((target.label, c), []).append(measure(target, c, duration, work))
    return {
        key: Load(*(statistics.median(getattr(x, f) for x in loads) for f in Load.__annotations__))
        for key, loads in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; figures are medians")
    parser.add_argument("--upstreams", default="httptools,aiohttp,httpx", help="first: the goals'")
    parser.add_argument("--skip-chain", action="store_true", help="no 3-step Serial chain")
    parser.add_argument("--skip-mlserver", action="store_true", help="no MLServer comparison")
    parser.add_argument(
        "--fresh-requests", type=int, default=2000, help="requests per kind, new connections"
    )
    args = parser.parse_args()
    measure: Measure = wrk if shutil.which("wrk") else aiohttp_load
    upstreams = args.upstreams.split(",")
    print(
        f"one {FEATURES}-feature row; load: {measure.__name__}; {args.duration:g}s per measurement;"
        f" {args.rounds} round(s), medians; {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        models = train(work)
        direct = stack.enter_context(container(models))
        expected = post(f"{direct}/invocations", CSV, "text/csv")
        targets = [Target("container, straight", f"{direct}/invocations", CSV, "text/csv")]
        endpoints: dict[str, list[str]] = {"one": [direct]}
        chain_steps: list[Target] = []
        if not args.skip_chain:
            body = CSV
            urls = []
            for step, (folder, _, method) in enumerate(CHAIN):
                last = step == len(CHAIN) - 1
                url = stack.enter_context(
                    container(models / folder, method, "" if last else "text/csv")
                )
                urls.append(url)
                chain_steps.append(
                    Target(f"step {folder}, straight", url + "/invocations", body, "text/csv", (1,))
                )
                body = post(url + "/invocations", body, "text/csv")
            chain_answer = body
            endpoints["chain"] = urls
        for upstream in upstreams:
            gw = stack.enter_context(gateway(upstream, endpoints))
            url = f"{gw}/endpoints/one/invocations"
            assert post(url, CSV, "text/csv") == expected, "gateway and container disagree"
            targets.append(Target(f"gateway ({upstream})", url, CSV, "text/csv"))
            if not args.skip_chain and upstream == upstreams[0]:
                url = f"{gw}/endpoints/chain/invocations"
                assert post(url, CSV, "text/csv") == chain_answer, "chain and steps disagree"
                chain = Target(f"chain ({upstream})", url, CSV, "text/csv")
        if not args.skip_chain:
            targets += [*chain_steps, chain]
        if not args.skip_mlserver:
            ml = stack.enter_context(mlserver(work))
            url = ml + mlserver_peer.infer_path()
            body = mlserver_peer.body(ROW)
            answer = json.loads(post(url, body, "application/json"))
            assert answer["outputs"][0]["data"] == json.loads(expected), (answer, expected)
            targets.append(Target("MLServer 1.7.1", url, body, "application/json"))
        results = measure_all(targets, measure, args.rounds, args.duration, work)
        if not args.skip_chain:
            sequences = {
                "steps one after another": [(t.url, t.body, t.content_type) for t in chain_steps],
                "chain through the gateway": [(chain.url, chain.body, chain.content_type)],
            }
            for label, load in chain_vs_steps(sequences, args.rounds, args.duration).items():
                results[(label, 1)] = load
        main_url = next(t.url for t in targets if t.label == f"gateway ({upstreams[0]})")
        print("new connection per request vs kept alive, interleaved ...", flush=True)
        fresh = connection_costs(
            f"{direct}/invocations", main_url, CSV, "text/csv", args.fresh_requests
        )
    report(targets, results, upstreams, args, fresh)


def chain_vs_steps(
    sequences: dict[str, list[tuple[str, bytes, str]]], rounds: int, duration: float
) -> dict[str, Load]:
    """The chain and its steps called in turn by one client, alternating; medians per side.

    wrk measures each step alone with the container kept busy, which a step inside a chain never
    is; one client calling the three steps in turn puts them in the same idle-then-wake pattern
    as the chain (on a VM, waking an idle CPU costs a good part of a millisecond).
    """
    runs: dict[str, list[Load]] = {}
    for _ in range(rounds):
        for label, steps in sequences.items():
            runs.setdefault(label, []).append(sequence(steps, duration))
    return {
        label: Load(
            *(statistics.median(getattr(x, f) for x in loads) for f in ("p50_ms", "p99_ms", "rps"))
        )
        for label, loads in runs.items()
    }


def report(
    targets: list[Target],
    results: dict[tuple[str, int], Load],
    upstreams: list[str],
    args: argparse.Namespace,
    fresh: ConnectionCosts,
) -> None:
    print(f"\n{'target':28}{'request':>9}{'c=1 p50 ms':>12}{'p99 ms':>9}{'c=16 req/s':>12}")
    for t in targets:
        c1 = results[(t.label, 1)]
        kind = "CSV" if t.content_type == "text/csv" else "V2 JSON"
        c16 = results.get((t.label, 16))
        rps = f"{c16.rps:12.0f}" if c16 else f"{'':12}"
        print(f"{t.label:28}{kind:>9}{c1.p50_ms:12.3f}{c1.p99_ms:9.3f}{rps}")

    goals: list[tuple[str, str, bool]] = []
    base1, base16 = results[("container, straight", 1)], results[("container, straight", 16)]
    for upstream in upstreams:
        g1, g16 = results[(f"gateway ({upstream})", 1)], results[(f"gateway ({upstream})", 16)]
        added = g1.p50_ms - base1.p50_ms
        ratio = g16.rps / base16.rps
        goals.append(
            (
                f"hop adds <= {HOP_P50_MS} ms p50 ({upstream})",
                f"{added:+.3f} ms",
                added <= HOP_P50_MS,
            )
        )
        goals.append(
            (
                f"hop keeps >= {HOP_RPS_RATIO} of req/s, c=16 ({upstream})",
                f"{ratio:.2f}",
                ratio >= HOP_RPS_RATIO,
            )
        )
    if not args.skip_chain:
        steps = results[("steps one after another", 1)].p50_ms
        chain = results[("chain through the gateway", 1)].p50_ms
        allowed = HOP_P50_MS * len(CHAIN)
        print(
            f"\none client, c=1 p50: steps one after another {steps:.3f} ms, chain through the "
            f"gateway {chain:.3f} ms; wrk, each step alone: "
            f"{sum(results[(f'step {f}, straight', 1)].p50_ms for f, _, _ in CHAIN):.3f} ms"
        )
        goals.append(
            (
                f"chain p50 <= steps in turn + {HOP_P50_MS} ms/step",
                f"{chain:.3f} vs {steps:.3f} ms ({chain - steps:+.3f}, <= {allowed:+.1f})",
                chain - steps <= allowed,
            )
        )
    main = f"gateway ({upstreams[0]})"
    if not args.skip_mlserver:
        ml16 = results[("MLServer 1.7.1", 16)]
        ratio = results[(main, 16)].rps / ml16.rps
        goals.append(
            (
                f"req/s >= {MLSERVER_RPS_RATIO:g}x MLServer's, c=16",
                f"{ratio:.2f}x",
                ratio >= MLSERVER_RPS_RATIO,
            )
        )
    print(
        f"\nurllib, c=1 p50: new connection per request straight {fresh.fresh_straight:.3f} ms, "
        f"gateway {fresh.fresh_gateway:.3f} ms ({fresh.fresh_added:+.3f}); kept alive straight "
        f"{fresh.kept_straight:.3f} ms, gateway {fresh.kept_gateway:.3f} ms "
        f"({fresh.kept_added:+.3f})"
    )
    goals.append(
        (
            f"new connection per request adds <= {FRESH_HOP_P50_MS} ms p50",
            f"{fresh.fresh_added:+.3f} ms (kept alive {fresh.kept_added:+.3f})",
            fresh.fresh_added <= FRESH_HOP_P50_MS,
        )
    )
    p50 = results[(main, 1)].p50_ms
    goals.append((f"p50 <= {P50_MS} ms through the gateway, c=1", f"{p50:.3f} ms", p50 <= P50_MS))
    print(f"\n{'goal':48}{'measured':>36}  result")
    for text, measured, ok in goals:
        print(f"{text:48}{measured:>36}  {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
