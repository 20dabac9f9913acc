"""``tandem build`` and ``tandem compose``: Tandem's images, and compose projects for endpoints."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import EXIT_INVALID, fail, failures


def build(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="What to build: sklearn, pytorch, tensorflow, gateway (default: all of them).",
            show_default=False,
        ),
    ] = None,
    base_image: Annotated[
        str,
        typer.Option(
            envvar="TANDEM_BASE_IMAGE",
            help="Image to build on: any with python3 >= 3.11 and its venv module.",
        ),
    ] = "python:3.11-slim",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide the build output.")] = False,
) -> None:
    """Build Tandem's images from this source checkout (the engine at DOCKER_HOST builds them)."""
    from gateway.ops.images import TARGETS, connect
    from gateway.ops.images import build as build_image

    chosen = list(dict.fromkeys(targets or TARGETS))
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        fail(
            EXIT_INVALID,
            f"unknown image(s) {', '.join(unknown)}; choose from: {', '.join(TARGETS)}",
        )
    with failures():
        client = connect()
        for target in chosen:
            started = time.monotonic()
            typer.echo(f"building {target} on {base_image}", err=True)
            name = build_image(
                client,
                target,
                base_image=base_image,
                on_line=(lambda _: None) if quiet else (lambda line: typer.echo(f"  {line}")),
            )
            typer.echo(f"built {name} in {time.monotonic() - started:.0f}s", err=True)


def compose(
    specs: Annotated[
        list[Path], typer.Argument(help="Endpoint spec files (YAML): one gateway serves them all.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Project folder to write (made if missing).")
    ] = Path("."),
    port: Annotated[int, typer.Option(help="Host port the gateway is published on.")] = 8080,
    prometheus: Annotated[
        bool, typer.Option(help="Add Prometheus, scraping the gateway's /metrics.")
    ] = True,
) -> None:
    """Write a compose project for the endpoints: sidecars, the gateway, Prometheus, models."""
    from gateway.ops.compose import write_project
    from pipelines.spec import load_specs

    args = shlex.join([*map(str, specs), "-o", str(output)])
    with failures():
        loaded = load_specs(specs)
        written = write_project(loaded, output, port=port, prometheus=prometheus, args=args)
    compose_file = output / "compose.yaml"
    typer.echo(f"wrote {compose_file} ({len(written)} files and model folders)", err=True)
    where = "" if output.resolve() == Path.cwd() else f"cd {shlex.quote(os.fspath(output))} && "
    typer.echo(f"run it: {where}docker compose up", err=True)
