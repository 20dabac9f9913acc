"""``tandem loadtest``: drive one endpoint and print req/s, percentiles and the latency split."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gateway.cli.common import EXIT_INVALID, fail


def loadtest(
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint name.")],
    endpoint_url: Annotated[
        str, typer.Option("--endpoint-url", help="The gateway's base URL.")
    ] = "http://127.0.0.1:8080",
    users: Annotated[int, typer.Option(min=1, help="Concurrent users.")] = 10,
    spawn_rate: Annotated[
        float, typer.Option(min=0, help="Users started a second (0: all at once).")
    ] = 10.0,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds to send requests.")] = 10.0,
    body: Annotated[str, typer.Option(help="Request body, or @file to read it from a file.")] = "",
    content_type: Annotated[
        str | None, typer.Option(help="Content-Type of the body.")
    ] = "application/json",
    accept: Annotated[str | None, typer.Option(help="Accept header.")] = None,
    target_container: Annotated[
        str | None, typer.Option(help="Container hostname (Direct endpoints).")
    ] = None,
    target_model: Annotated[str | None, typer.Option(help="Model (MultiModel endpoints).")] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0.01, help="Fixed requests a second over all users (else back to back)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds one request may take.")] = 30.0,
    header: Annotated[
        list[str] | None,
        typer.Option(help="Extra 'Name: value' header, repeatable (e.g. an API key)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Write a chart of the run (instances, req/s, latency over time) to this HTML "
            "file: one self-contained page.",
        ),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live/--no-live",
            help="A live view of req/s, p50/p99, errors and instances per variant (only on a "
            "terminal).",
        ),
    ] = True,
) -> None:
    """Load-test one endpoint; ModelLatency vs OverheadLatency come from the gateway's /metrics.

    On a terminal a live view shows each production variant's req/s, p50/p99, errors and
    instances serving as the run goes; --chart writes the run's timeline as an HTML chart.
    """
    from rich.console import Console

    from gateway.ops.loadtest import LoadSpec, render, run_load
    from gateway.ops.loadwatch import LiveTable, chart_html, timeline

    spec = LoadSpec(
        url=endpoint_url,
        endpoint=endpoint,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        body=_body(body),
        content_type=content_type or None,
        accept=accept,
        target_container=target_container,
        target_model=target_model,
        rate=rate,
        timeout=timeout,
        headers=tuple(_header(h) for h in header or []),
    )
    console = Console()
    view = LiveTable(f"tandem loadtest: {endpoint}")
    watched = live and console.is_terminal
    if watched:
        from rich.live import Live

        with Live(view, console=console, refresh_per_second=4, transient=True):
            result = asyncio.run(run_load(spec, watch=view.update))
    else:  # a pipe or a file gets the final table alone; a chart still polls the instances
        result = asyncio.run(run_load(spec, watch=_ignore if chart is not None else None))
    console.print(render(result))
    if json_out is not None:
        summary = {**result.summary(), "windows": result.windows(10.0)}
        json_out.write_text(json.dumps(summary, indent=2) + "\n")
    if chart is not None:
        title = f"tandem loadtest: {endpoint}, {users} users"
        try:
            chart.write_text(chart_html(timeline(result), title))
        except OSError as exc:
            _fail(f"--chart: cannot write {chart}: {exc.strerror}")
        console.print(f"chart: {chart}")
    if result.requests and result.failures == result.requests:
        raise typer.Exit(1)  # nothing succeeded: a script should notice


def _ignore(*_: object) -> None:
    """A watcher that only makes the run poll the instances (kept for the chart)."""


def _body(value: str) -> bytes:
    if not value.startswith("@"):
        return value.encode()
    path = Path(value[1:]).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"--body: cannot read {path}: {exc.strerror}")


def _header(value: str) -> tuple[str, str]:
    name, sep, text = value.partition(":")
    if not sep or not name.strip():
        _fail(f"--header: expected 'Name: value', got {value!r}")
    return name.strip(), text.strip()


def _fail(message: str) -> NoReturn:
    fail(EXIT_INVALID, message)
