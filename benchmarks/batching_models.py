"""benchmarks/batching.py's demo-sized nets, and what it reads beside wrk's figures.

Issue 15's premise is that a PyTorch or TensorFlow call costs about the same for 1 row as for 32,
1-2 ms a call. The zoo's nets (20 -> 16 -> 1) are far cheaper than that (PyTorch: 0.01-0.05 ms), so
the demo-sized pair is sized like the premise: a deep, narrow residual MLP over 256 features (32
wide, ``x + relu(W x + b)`` blocks; 600 for PyTorch, 200 for TensorFlow, whose per-op cost is
higher). Its cost is the framework's per-op overhead, as in any model of many small layers, so 32
rows cost little more than one (TensorFlow) or under twice one (PyTorch). The weights are random
(seeded): only the cost matters here.

Also here, for the report: each model's in-process cost per call for 1 and 32 rows (the container's
own framework code and thread counts, in a worker thread of a child process per framework), and a
:class:`Probe` around each wrk measurement that reads the container's ``GET /metrics``
(``tandem_container_batch_size``: the mean batch size) and the CPU time the gateway, the container,
wrk and everything else on the machine used meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.loadgen import Load, Measure, Target

DEMO_FEATURES = 256
DEMO_WIDTH = 32
DEMO_DEPTH = {"pytorch": 600, "tensorflow": 200}
#: Rows per call of the in-process cost's second figure.
MANY = 32

TRAIN_DEMO = """
import json, sys
from pathlib import Path
features, width, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
depths = json.loads(sys.argv[4])
if "pytorch" in depths:
    import torch
    torch.manual_seed(0)

    class Block(torch.nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(width, width)
            torch.nn.init.normal_(self.linear.weight, std=0.001)
            torch.nn.init.zeros_(self.linear.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.relu(self.linear(x))

    net = torch.nn.Sequential(
        torch.nn.Linear(features, width),
        *[Block(width) for _ in range(depths["pytorch"])],
        torch.nn.Linear(width, 1),
        torch.nn.Sigmoid(),
    ).eval()
    (out / "pytorch").mkdir(parents=True)
    # Traced, not scripted: scripting needs the source file, which a -c script has not.
    torch.jit.trace(net, torch.zeros(1, features)).save(str(out / "pytorch" / "model.pt"))
if "tensorflow" in depths:
    import keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(features,), name="features")
    h = keras.layers.Dense(width)(inputs)
    small = keras.initializers.RandomNormal(stddev=0.001)
    for _ in range(depths["tensorflow"]):
        h = keras.layers.Add()([h, keras.layers.Dense(width, "relu", kernel_initializer=small)(h)])
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.export(str(out / "tensorflow" / "1"), verbose=False)
"""

COST = """
import json, pathlib, statistics, sys, threading, time
from containers import frameworks, resources
from containers.settings import ContainerSettings
name, jobs = sys.argv[1], json.loads(sys.stdin.read())
settings = ContainerSettings()  # the container's, from the same environment
framework = frameworks.create(name, settings)
framework.configure_threads(  # as the container sizes them, in the main thread
    *framework.thread_counts(settings, resources.predicting_threads())
)
costs = {}

def measure():  # in a thread of its own, as the container's predictions run
    framework.thread_initializer()
    for label, folder, content_type, bodies in jobs:
        model = framework.load(pathlib.Path(folder))
        data = [framework.input_fn(bytes.fromhex(body), content_type) for body in bodies]
        for item in data * 30:  # warm: TorchScript optimizes on its first calls
            framework.predict(item, model)
        costs[label] = []
        for item in data:  # median wall time; CPU time of the whole process (helper threads too)
            times, cpu = [], time.process_time()
            for _ in range(300):
                started = time.perf_counter()
                framework.predict(item, model)
                times.append(time.perf_counter() - started)
            cpu = (time.process_time() - cpu) / len(times)
            costs[label] += [statistics.median(times) * 1e3, cpu * 1e3]

worker = threading.Thread(target=measure)
worker.start()
worker.join()
if len(costs) != len(jobs):
    sys.exit("a model could not be measured")
print(json.dumps(costs))
"""


def train_demo(out: Path, frameworks: list[str]) -> None:
    """The demo-sized nets of ``frameworks`` (PyTorch, TensorFlow) in ``out/<framework>``."""
    depths = {name: DEMO_DEPTH[name] for name in frameworks if name in DEMO_DEPTH}
    args = [str(DEMO_FEATURES), str(DEMO_WIDTH), str(out), json.dumps(depths)]
    subprocess.run([sys.executable, "-c", TRAIN_DEMO, *args], check=True)


@dataclass
class Job:
    """One model whose in-process cost is measured, with a 1-row and a ``MANY``-row body."""

    label: str
    framework: str
    folder: Path
    content_type: str
    one: bytes
    many: bytes


def call_costs(jobs: list[Job], env: dict[str, str]) -> dict[str, list[float]]:
    """Per label: median wall ms and mean CPU ms per ``predict`` call, for 1 then ``MANY`` rows.

    Measured in a child process per framework, in a worker thread as the container predicts."""
    costs: dict[str, list[float]] = {}
    for framework in dict.fromkeys(job.framework for job in jobs):
        mine = [
            (job.label, str(job.folder), job.content_type, [job.one.hex(), job.many.hex()])
            for job in jobs
            if job.framework == framework
        ]
        out = subprocess.run(
            [sys.executable, "-c", COST, framework],
            input=json.dumps(mine),
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **env},
        ).stdout
        costs |= json.loads(out)
    return costs


@dataclass
class Sample:
    """One measurement's side figures: batch sizes formed, and cores used by whom."""

    mean_batch: float  # requests per model call (0: no batches, e.g. batching is off)
    gateway: float  # cores, averaged over the measurement
    container: float
    wrk: float
    other: float  # the rest of the machine: other processes, including other benchmarks


_SERIES = re.compile(r"^tandem_container_batch_size_(sum|count)\{[^}]*\}\s+(\S+)$", re.M)


def batch_totals(container: str) -> tuple[float, float]:
    """(model calls, requests in them) so far, from the container's ``GET /metrics``."""
    with urllib.request.urlopen(f"{container}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    totals = {"sum": 0.0, "count": 0.0}
    for kind, value in _SERIES.findall(text):
        totals[kind] += float(value)
    return totals["count"], totals["sum"]


def _listener(url: str) -> list[psutil.Process]:
    """This run's child processes listening on ``url``'s port (a server and its workers)."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == port
                for c in child.net_connections("tcp")
            ):
                found.append(child)
        except psutil.Error:
            continue
    if not found:
        raise SystemExit(f"no process of this run listens on {url}")
    return found


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


class Probe:
    """Wraps a load generator: around each measurement, batch sizes and CPU time by process."""

    def __init__(
        self, measure: Measure, containers: dict[str, str], gateway: str | None = None
    ) -> None:
        """``containers``: target label -> its container's URL; ``gateway``: the gateway's."""
        self._measure = measure
        self._containers = {label: _listener(url) for label, url in containers.items()}
        self._urls = containers
        self._gateway = _listener(gateway) if gateway else []
        self.samples: dict[tuple[str, int], list[Sample]] = {}
        self.__name__ = measure.__name__

    def __call__(self, target: Target, concurrency: int, duration: float, work: Path) -> Load:
        url = self._urls.get(target.label)
        if url is None:  # a peer: figures only
            return self._measure(target, concurrency, duration, work)
        mine = self._containers[target.label]
        calls, requests = batch_totals(url)
        cpu = (_cpu(self._gateway), _cpu(mine), _waited(), _busy())
        started = time.perf_counter()
        load = self._measure(target, concurrency, duration, work)
        elapsed = time.perf_counter() - started
        calls_after, requests_after = batch_totals(url)
        gateway, container, wrk, busy = (
            (now - then) / elapsed
            for now, then in zip(
                (_cpu(self._gateway), _cpu(mine), _waited(), _busy()), cpu, strict=True
            )
        )
        calls, requests = calls_after - calls, requests_after - requests
        sample = Sample(
            requests / calls if calls else 0.0,
            gateway,
            container,
            wrk,
            max(0.0, busy - gateway - container - wrk),
        )
        self.samples.setdefault((target.label, concurrency), []).append(sample)
        return load


def _waited() -> float:
    """CPU seconds of this process's finished children: wrk, once each measurement ends."""
    times = os.times()
    return times.children_user + times.children_system


def _busy() -> float:
    """CPU seconds the whole machine spent outside idle so far (all cores)."""
    times = psutil.cpu_times()
    return float(
        sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    )


def median_sample(samples: list[Sample]) -> Sample:
    """Per-field medians over the rounds (so one noisy round does not set a figure)."""
    fields: dict[str, Any] = {
        name: statistics.median(getattr(sample, name) for sample in samples)
        for name in Sample.__dataclass_fields__
    }
    return Sample(**fields)
