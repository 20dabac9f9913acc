"""What adaptive batching buys, measured in one run: the same container with and without it.

    .venv/bin/python benchmarks/batching.py [--duration 5] [--rounds 2] [--skip-mlserver]
        [--skip-torchserve] [--frameworks pytorch,tensorflow,sklearn] [--models zoo,demo]
        [--container-env NAME=VALUE ...] [--quick]

Each model (``zoo``: the zoo's small PyTorch and TensorFlow nets and the scikit-learn logistic
regression of benchmarks/gateway.py; ``demo``: PyTorch and TensorFlow nets sized like issue 15's
premise, 1-3 ms a one-row call and little more for 32, see benchmarks/batching_models.py) runs in
two real containers, one with batching on (``TANDEM_MAX_BATCH_SIZE=32``,
``TANDEM_MAX_BATCH_DELAY_MS=2``) and one without, both behind one gateway, and is loaded by ``wrk``
with one-row requests at c=1 and c=32, targets alternating round after round; figures are medians
over the rounds. The same containers are also measured straight at c=32, to show how much of the
ceiling is the gateway's (on 2 cores it shares them with wrk). Peers, called straight: MLServer
1.7.1 with adaptive batching (``max_batch_size 32``, ``max_batch_time 0.002``) serving the same
logistic regression, and TorchServe with ``batchSize 32``, ``maxBatchDelay 2`` serving the same
TorchScript file (benchmarks/torchserve_peer.py; skipped when its environment cannot be made). Also
printed: each model's in-process cost per call for 1 and 32 rows (wall and CPU time), and per c=32
measurement the mean batch size formed (the container's ``tandem_container_batch_size``), the CPU
time per request of the gateway and of the container, and the cores busy on the whole machine (of
which other processes'). ``--quick`` measures one short round of the scikit-learn zoo pair only: it
proves the script works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import mlserver_peer, torchserve_peer  # noqa: E402
from benchmarks.batching_models import (  # noqa: E402
    DEMO_FEATURES,
    MANY,
    Job,
    Probe,
    call_costs,
    median_sample,
    train_demo,
)
from benchmarks.gateway import free_port, gateway, measure_all, post, process  # noqa: E402
from benchmarks.loadgen import Load, Measure, Target, aiohttp_load, wrk  # noqa: E402

FEATURES = 20


def make_row(features: int) -> list[float]:
    return [round(0.1 * (i % 7) - 0.3, 2) for i in range(features)]


ROW = make_row(FEATURES)
JSON_ROW = json.dumps([ROW]).encode()


def request(framework: str, row: list[float], rows: int = 1) -> tuple[bytes, str]:
    """What each framework is sent: rows in the framework's everyday content type."""
    if framework == "sklearn":
        return "\n".join([",".join(str(x) for x in row)] * rows).encode(), "text/csv"
    if framework == "tensorflow":
        return json.dumps({"instances": [row] * rows}).encode(), "application/json"
    return json.dumps([row] * rows).encode(), "application/json"


@dataclass(frozen=True)
class Model:
    """One model measured: ``key`` names its endpoints and labels its rows."""

    key: str
    framework: str
    folder: Path
    row: list[float]

    def request(self, rows: int = 1) -> tuple[bytes, str]:
        return request(self.framework, self.row, rows)


BATCHING = {"TANDEM_MAX_BATCH_SIZE": "32", "TANDEM_MAX_BATCH_DELAY_MS": "2"}
HIGH = 32
# Goals (issue 15).
TORCH_TF_RATIO = 4.0
SKLEARN_RATIO = 1.3
MLSERVER_RATIO = 2.0
TORCHSERVE_RATIO = 1.2
P50_ADDED_MS = 0.1

TRAIN = """
import sys
from pathlib import Path
import numpy as np
features, out, frameworks = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
rng = np.random.default_rng(0)
x = rng.normal(size=(500, features)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
if "pytorch" in frameworks:
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(features, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Sigmoid()
    ).eval()
    (out / "pytorch").mkdir(parents=True)
    torch.jit.script(net).save(str(out / "pytorch" / "model.pt"))
if "tensorflow" in frameworks:
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(features,), name="features"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    model.export(str(out / "tensorflow" / "1"), verbose=False)
if "sklearn" in frameworks:
    import joblib
    from sklearn.linear_model import LogisticRegression
    (out / "sklearn").mkdir(parents=True)
    X = np.random.default_rng(0).normal(size=(500, features))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] + X[:, 1] > 0).astype(int)),
                out / "sklearn" / "model.joblib")
"""


@contextlib.contextmanager
def container(
    framework: str, model_dir: Path, batching: bool, extra: dict[str, str]
) -> Iterator[str]:
    port = free_port()
    env = {
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        **(BATCHING if batching else {}),
        **extra,
    }
    args = [sys.executable, "-m", "containers", "serve", "--framework", framework]
    with process(args, env, f"http://127.0.0.1:{port}/ping"):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def mlserver(workdir: Path) -> Iterator[str]:
    """MLServer 1.7.1 with its adaptive batching on, as its docs configure it."""
    interpreter = mlserver_peer.python()
    ports = (free_port(), free_port(), free_port())
    folder = workdir / "mlserver"
    mlserver_peer.prepare(folder, interpreter, FEATURES, ports)
    settings_file = folder / "model-settings.json"
    settings = json.loads(settings_file.read_text())
    settings |= {"max_batch_size": HIGH, "max_batch_time": 0.002}
    settings_file.write_text(json.dumps(settings))
    url = f"http://127.0.0.1:{ports[0]}"
    with process(mlserver_peer.command(interpreter, folder), {}, url + mlserver_peer.ready_path()):
        yield url


def label(key: str, batching: bool) -> str:
    return f"{key}, {'batched' if batching else 'unbatched'}"


def endpoint(key: str, batching: bool) -> str:
    return f"{key}-{'on' if batching else 'off'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; figures are medians")
    parser.add_argument("--frameworks", default="pytorch,tensorflow,sklearn")
    parser.add_argument("--models", default="zoo,demo", help="zoo, demo (PyTorch, TF) or both")
    parser.add_argument(
        "--container-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in every container (and the in-process costs), e.g. OMP_NUM_THREADS=1",
    )
    parser.add_argument("--skip-mlserver", action="store_true", help="no MLServer comparison")
    parser.add_argument("--skip-torchserve", action="store_true", help="no TorchServe comparison")
    parser.add_argument("--quick", action="store_true", help="one short round, scikit-learn only")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.frameworks, args.models = 1.0, 1, "sklearn", "zoo"
        args.skip_mlserver = args.skip_torchserve = True
    frameworks, sizes = args.frameworks.split(","), args.models.split(",")
    extra = dict(item.partition("=")[::2] for item in args.container_env)
    zoo = frameworks if "zoo" in sizes else []
    demo = [name for name in frameworks if name in ("pytorch", "tensorflow") and "demo" in sizes]
    if not zoo and not demo:
        raise SystemExit("no models: --models zoo needs --frameworks, demo PyTorch or TensorFlow")
    measure: Measure = wrk if shutil.which("wrk") else aiohttp_load
    print(
        f"one row ({FEATURES} features, demo-sized nets {DEMO_FEATURES}); load:"
        f" {measure.__name__}; {args.duration:g}s per measurement; {args.rounds} round(s),"
        f" medians; {os.cpu_count()} CPUs; containers' extra environment: {extra or 'none'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        folder = work / "models"
        if zoo:
            subprocess.run(
                [sys.executable, "-c", TRAIN, str(FEATURES), str(folder), ",".join(zoo)],
                check=True,
            )
        if demo:
            train_demo(work / "demo", demo)
        models = [Model(name, name, folder / name, ROW) for name in zoo] + [
            Model(f"{name}-demo", name, work / "demo" / name, make_row(DEMO_FEATURES))
            for name in demo
        ]
        jobs = []
        for m in models:
            (one, content_type), (many, _) = m.request(), m.request(MANY)
            jobs.append(Job(m.key, m.framework, m.folder, content_type, one, many))
        costs = call_costs(jobs, extra)
        print(
            f"\n{'in-process predict, ms per call':34}{'1 row':>9}{'CPU':>8}{f'{MANY} rows':>10}"
            f"{'CPU':>8}"
        )
        for key, (wall_one, cpu_one, wall_many, cpu_many) in costs.items():
            print(f"{key:34}{wall_one:9.3f}{cpu_one:8.3f}{wall_many:10.3f}{cpu_many:8.3f}")
        endpoints: dict[str, list[str]] = {}
        containers: dict[str, str] = {}  # target label -> its container
        straight = []  # the containers without the gateway: where the ceiling is
        for m in models:
            for batching in (False, True):
                url = stack.enter_context(container(m.framework, m.folder, batching, extra))
                endpoints[endpoint(m.key, batching)] = [url]
                name = label(m.key, batching)
                containers[name] = containers[f"{name}, straight"] = url
                straight.append(
                    Target(f"{name}, straight", f"{url}/invocations", *m.request(), (HIGH,))
                )
        gw = stack.enter_context(gateway("httptools", endpoints))
        targets: list[Target] = []
        for m in models:
            body, content_type = m.request()
            answers = set()
            for batching in (False, True):
                url = f"{gw}/endpoints/{endpoint(m.key, batching)}/invocations"
                answers.add(post(url, body, content_type))
                targets.append(Target(label(m.key, batching), url, body, content_type, (1, HIGH)))
            assert len(answers) == 1, f"{m.key}: batched and unbatched answers differ: {answers}"
        if "sklearn" in zoo and not args.skip_mlserver:
            ml = stack.enter_context(mlserver(work))
            url = ml + mlserver_peer.infer_path()
            targets.append(
                Target(
                    "MLServer, batching", url, mlserver_peer.body(ROW), "application/json", (HIGH,)
                )
            )
        if "pytorch" in zoo and not args.skip_torchserve:
            served = torchserve_peer.start(stack, work, folder / "pytorch" / "model.pt")
            if served is None:
                print("TorchServe: not measured (its environment could not be made)", flush=True)
            else:
                targets.append(
                    Target("TorchServe, batching", served, JSON_ROW, "application/json", (HIGH,))
                )
        targets += straight
        for target in targets:  # every batch size once: TorchScript compiles on first calls
            measure(target, HIGH, 1.0, work)
        probe = Probe(measure, containers, gw)
        results = measure_all(targets, probe, args.rounds, args.duration, work)
    report(targets, results, [m.key for m in models], probe)


def report(
    targets: list[Target], results: dict[tuple[str, int], Load], keys: list[str], probe: Probe
) -> None:
    print(
        f"\n{'':34}{'c=1':>22}{f'c={HIGH}':>22}{'':8}{f'c={HIGH}: CPU ms per request':>28}"
        f"{'cores busy':>12}\n{'target':34}{'p50 ms':>11}{'p99 ms':>11}{'req/s':>12}{'p50 ms':>10}"
        f"{'batch':>8}{'gateway':>14}{'container':>14}{'(others)':>12}"
    )
    for t in targets:
        c1, high = results.get((t.label, 1)), results[(t.label, HIGH)]
        one = f"{c1.p50_ms:11.3f}{c1.p99_ms:11.3f}" if c1 else f"{'':22}"
        side = ""
        if (t.label, HIGH) in probe.samples:
            s = median_sample(probe.samples[(t.label, HIGH)])
            batch = f"{s.mean_batch:.1f}" if s.mean_batch else "-"
            busy = s.gateway + s.container + s.wrk + s.other
            side = (
                f"{batch:>8}{s.gateway / high.rps * 1e3:14.3f}{s.container / high.rps * 1e3:14.3f}"
                f"{f'{busy:.2f} ({s.other:.2f})':>12}"
            )
        print(f"{t.label:34}{one}{high.rps:12.0f}{high.p50_ms:10.3f}{side}")
    goals: list[tuple[str, str, bool]] = []
    for key in keys:
        on, off = label(key, True), label(key, False)
        ratio = results[(on, HIGH)].rps / results[(off, HIGH)].rps
        want = SKLEARN_RATIO if key == "sklearn" else TORCH_TF_RATIO
        goals.append(
            (f"{key}: c={HIGH} req/s >= {want:g}x unbatched", f"{ratio:.2f}x", ratio >= want)
        )
        added = results[(on, 1)].p50_ms - results[(off, 1)].p50_ms
        goals.append(
            (f"{key}: c=1 p50 within +{P50_ADDED_MS} ms", f"{added:+.3f} ms", added <= P50_ADDED_MS)
        )
    for key in keys:
        on, off = (f"{label(key, b)}, straight" for b in (True, False))
        if (on, HIGH) in results:
            ratio = results[(on, HIGH)].rps / results[(off, HIGH)].rps
            print(f"{key}: batched / unbatched, c={HIGH}, containers straight: {ratio:.2f}x")
    peers = (
        ("MLServer, batching", "sklearn", MLSERVER_RATIO),
        ("TorchServe, batching", "pytorch", TORCHSERVE_RATIO),
    )
    for peer, key, want in peers:
        if (peer, HIGH) in results:
            ratio = results[(label(key, True), HIGH)].rps / results[(peer, HIGH)].rps
            goals.append(
                (f"{key}: c={HIGH} req/s >= {want:g}x {peer}", f"{ratio:.2f}x", ratio >= want)
            )
    print(f"\n{'goal':52}{'measured':>14}  result")
    for text, measured, ok in goals:
        print(f"{text:52}{measured:>14}  {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
