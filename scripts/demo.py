"""The README's main job: build the example models, serve the endpoints, send them real requests.

Run by ``bash scripts/demo.sh``. It starts ``tandem serve`` on the three example specs, waits for
``/ping`` with a deadline, calls ``zoo`` (each of its three containers) and ``churn`` (a batch of
raw CSV rows) with boto3's ``sagemaker-runtime`` client, prints the answers with each step's time;
then calls every ``tenants`` model (MultiModel, two instances) and shows a load against a warm
call, which instance holds which model and the run's CloudWatch figures read back through boto3
(``pipelines/examples/tenants_calls.py``). It stops the gateway however it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages come first

from gateway.cli.invoke import parse_server_timing  # noqa: E402
from pipelines.examples import SPECS, churn, tenants_calls, zoo  # noqa: E402

# Piped output (a CI log) gets room for the tables instead of the 80 columns rich assumes.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoError(Exception):
    """A step of the demo failed; the message says which and where the logs are."""


def build_models() -> None:
    console.print("[bold]1. Example models[/bold] (python -m pipelines.examples.build)")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.examples.build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"building the example models failed:\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        console.print(f"   {line}")
    console.print(f"   [dim]({time.perf_counter() - started:.1f}s)[/dim]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gateway(port: int, state_dir: Path, deadline_s: float) -> Iterator[str]:
    """``tandem serve`` both examples in the background; stopped on the way out, come what may."""
    specs = [str(path.relative_to(ROOT)) for path in SPECS.values()]
    args = ["serve", *specs, "--port", str(port), "--state-dir", str(state_dir)]
    console.print("\n[bold]2. Gateway[/bold]")
    console.print(f"   $ tandem {' '.join(args)}")
    log_path = state_dir / "gateway.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Figures rolled up every second, so the CloudWatch part reads the whole run.
            env={**os.environ, "TANDEM_METRIC_FLUSH_INTERVAL": "1"},
        )
    _record_pid(proc.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        wait_for_ping(url, proc, deadline_s, log_path)
        console.print(
            f"   ready at {url} in {time.perf_counter() - started:.1f}s "
            f"[dim](log: {log_path})[/dim]"
        )
        yield url
    finally:
        stop(proc)
        _record_pid(None)


def wait_for_ping(url: str, proc: subprocess.Popen[bytes], deadline_s: float, log: Path) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            raise DemoError(f"tandem serve exited with {proc.returncode}:\n{_tail(log)}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ping", timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise DemoError(f"the gateway was not ready within {deadline_s:.0f}s:\n{_tail(log)}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the gateway drains and stops its containers), SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    console.print("\n   stopping the gateway ...", end="")
    # A second Ctrl-C or SIGTERM must not cut the stop short and leave the gateway running.
    shielded = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOP_SIGNALS}
    try:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        for signum, handler in shielded.items():
            signal.signal(signum, handler)
    console.print(" stopped")


def _record_pid(pid: int | None) -> None:
    # demo.sh's trap stops the gateway by this pid if this process is killed outright.
    pidfile = os.environ.get("TANDEM_DEMO_PIDFILE")
    if pidfile:
        Path(pidfile).write_text(f"{pid}\n" if pid else "", encoding="utf-8")


def _tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def runtime_client(url: str) -> Any:
    """boto3's own ``sagemaker-runtime`` client, pointed at the gateway; credentials are dummies."""
    return tenants_calls.client("sagemaker-runtime", url)


def invoke(
    client: Any, endpoint: str, body: str, content_type: str, **extra: str
) -> tuple[Any, str]:
    """One call after a warm-up call; returns the decoded JSON answer and the per-step times.

    The first call into a model pays one-time costs (TensorFlow traces its graph, PyTorch tunes its
    kernels); the times shown are those of a second, identical call.
    """
    request = {
        "EndpointName": endpoint,
        "Body": body.encode(),
        "ContentType": content_type,
        "Accept": "application/json",
        **extra,
    }
    client.invoke_endpoint(**request)["Body"].read()
    response = client.invoke_endpoint(**request)
    answer = json.loads(response["Body"].read())
    timing = response["ResponseMetadata"]["HTTPHeaders"].get("server-timing")
    steps = " · ".join(f"{name} {ms:.1f} ms" for name, ms in parse_server_timing(timing))
    return answer, steps


def probabilities(answer: Any) -> list[float]:
    """P(class 1) per row, from TF-Serving JSON or a bare list of rows."""
    rows = answer["predictions"] if isinstance(answer, dict) else answer
    return [float(row[-1]) if isinstance(row, list) else float(row) for row in rows]


def table(*columns: str) -> Table:
    grid = Table(box=None, padding=(0, 2), pad_edge=False)
    for column in columns:
        grid.add_column(column)
    return grid


def call_zoo(client: Any) -> None:
    x, _ = zoo.dataset(3, seed=2024)
    rows = [[round(float(v), 3) for v in row] for row in x]
    console.print(
        "\n[bold]3. zoo[/bold] (Direct): the same 3 rows to each container, "
        "picked by TargetContainerHostname"
    )
    console.print(f"   rows = {rows}")
    grid = table("container", "body sent", "P(class 1) per row", "time per step")
    for hostname in ("sklearn", "pytorch", "tensorflow"):
        payload: Any = {"instances": rows} if hostname == "tensorflow" else rows
        answer, steps = invoke(
            client, "zoo", json.dumps(payload), "application/json", TargetContainerHostname=hostname
        )
        shape = '{"instances": rows}' if hostname == "tensorflow" else "rows"
        grid.add_row(hostname, shape, "  ".join(f"{p:.3f}" for p in probabilities(answer)), steps)
    console.print(Padding(grid, (0, 0, 0, 3), expand=False))


def call_churn(client: Any) -> None:
    rows, _ = churn.raw_rows(5, seed=2024)
    console.print(
        "\n[bold]4. churn[/bold] (Serial): 5 raw customer rows in one CSV request "
        "-> preprocess (scikit-learn) -> classifier (TensorFlow)"
    )
    answer, steps = invoke(client, "churn", churn.to_csv(rows), "text/csv")
    console.print(f"   columns: {','.join(churn.COLUMNS)}")
    grid = table("row sent", "P(churn)")
    for row, p in zip(rows, probabilities(answer), strict=True):
        grid.add_row(",".join(row), f"{p:.3f}")
    console.print(Padding(grid, (0, 0, 0, 3), expand=False))
    console.print(f"   time per step: {steps}")


def call_tenants(url: str) -> None:
    console.print(
        f"\n[bold]5. tenants[/bold] (MultiModel, 2 instances): {len(tenants_calls.ARTIFACTS)} "
        "per-customer models, each request naming one with TargetModel"
    )
    run = tenants_calls.run(url)
    for label, call in (("first call (loads it)", run.first), ("warm call", run.warm)):
        steps = " · ".join(f"{name} {ms:.1f} ms" for name, ms in parse_server_timing(call.timing))
        console.print(f"   {label:<22} {call.target}: {call.ms:6.1f} ms   [dim]{steps}[/dim]")
    cold, warm = (statistics.median(c.ms for c in rest) for rest in (run.cold_rest, run.warm_rest))
    console.print(
        f"   median of the other models' first calls {cold:.1f} ms, of the "
        f"{len(run.warm_rest)} later calls {warm:.1f} ms "
        "[dim](the very first also pays the container's scikit-learn import)[/dim]"
    )
    sample = list(run.answers.items())[:4]
    console.print(
        f"   the same row {list(tenants_calls.ROW)} priced by 4 customers: "
        + "  ".join(f"{target.removesuffix('.tar.gz')} {p:.2f}" for target, p in sample)
    )
    console.print(
        f"   {run.calls} requests sent, one at a time; the gateway counted "
        f"{run.misses} cold (loaded) and {run.hits} warm"
    )
    grid = table("instance", "models loaded")
    for i, (instance, models) in enumerate(run.holders.items()):
        names = ", ".join(m.removesuffix(".tar.gz").removeprefix("customer-") for m in models)
        grid.add_row(f"#{i} {instance}", f"{len(models):>2}: customer-{{{names}}}")
    console.print(Padding(grid, (0, 0, 0, 3), expand=False))
    console.print(
        f"   copies per loaded model: {tenants_calls.copies_per_model(run):.2f} "
        "(model affinity: each model on one instance)"
    )
    console.print("   CloudWatch (boto3 client('cloudwatch') on the gateway; AWS/SageMaker):")
    figures = table("metric", "statistic", "value")
    for metric, stat, unit in tenants_calls.FIGURES:
        value = run.figures.get((metric, stat))
        digits = 0 if value is None or value.is_integer() or value >= 100 else 2
        shown = "-" if value is None else f"{value:,.{digits}f} {unit}".strip()
        figures.add_row(metric, stat, shown)
    console.print(Padding(figures, (0, 0, 0, 3), expand=False))


def _exit_on(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the gateway's ``finally``


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="gateway port (default: a free one)")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for every container to become healthy",
    )
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on)

    state_dir = Path(tempfile.mkdtemp(prefix="tandem-demo-"))
    keep_logs = False
    try:
        build_models()
        with gateway(args.port or free_port(), state_dir, args.ready_timeout) as url:
            client = runtime_client(url)
            call_zoo(client)
            call_churn(client)
            call_tenants(url)
    except (DemoError, Exception) as exc:
        keep_logs = True
        what = str(exc) if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
        console.print(f"\n[red]demo failed:[/red] {escape(what)}")
        console.print(f"logs kept in {state_dir}")
        return 1
    except KeyboardInterrupt:
        console.print("\ninterrupted")
        return 130
    finally:
        if not keep_logs:
            shutil.rmtree(state_dir, ignore_errors=True)
    console.print(
        "\ndone: all three endpoints answered; the gateway and its containers are stopped."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
