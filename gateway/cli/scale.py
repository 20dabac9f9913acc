"""``tandem haproxy`` and ``tandem k8s``: many identical instances behind real infrastructure."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import failures


def haproxy(
    specs: Annotated[
        list[Path], typer.Argument(help="Endpoint spec files (YAML) every instance serves.")
    ],
    instances: Annotated[
        str,
        typer.Option(help="The Tandem instances: HOST:PORT,HOST:PORT,... ([ADDR]:PORT for IPv6)."),
    ],
    bind: Annotated[
        str, typer.Option(help="Where HAProxy listens: ADDRESS:PORT.")
    ] = "0.0.0.0:8080",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    check_interval: Annotated[
        float, typer.Option(help="Seconds between two health checks of an instance.")
    ] = 2.0,
    fall: Annotated[int, typer.Option(help="Failed checks before an instance is out.")] = 3,
    rise: Annotated[int, typer.Option(help="Passed checks before it is back.")] = 2,
    balance_factor: Annotated[
        int,
        typer.Option(help="Bounded load: an instance takes at most this % of the average load."),
    ] = 150,
    stats_socket: Annotated[
        str | None, typer.Option(help="Path of HAProxy's admin socket (show stat, ...).")
    ] = None,
) -> None:
    """Write an HAProxy configuration: requests for a model stick to few instances."""
    from gateway.ops.haproxy import Checks, parse_instances, render
    from pipelines.spec import load_specs

    with failures():
        text = render(
            load_specs(specs),
            parse_instances(instances),
            bind=bind,
            checks=Checks(interval=check_interval, fall=fall, rise=rise),
            balance_factor=balance_factor,
            stats_socket=stats_socket,
            args=shlex.join(sys.argv[2:]),
        )
    _write(text, output)


def k8s(
    specs: Annotated[list[Path], typer.Argument(help="Endpoint spec files (YAML), one each.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder for a kustomize base per endpoint (default: stdout)."
        ),
    ] = None,
    min_replicas: Annotated[int, typer.Option(help="Fewest pods the autoscaler keeps.")] = 2,
    max_replicas: Annotated[int, typer.Option(help="Most pods the autoscaler makes.")] = 10,
    target_invocations: Annotated[
        int, typer.Option(help="Invocations per minute per pod the autoscaler aims at.")
    ] = 600,
    target_backlog: Annotated[
        float,
        typer.Option(
            help="Queued asynchronous requests per pod the autoscaler aims at "
            "(endpoints with async_inference)."
        ),
    ] = 5.0,
    registry: Annotated[
        str, typer.Option(help="Prefix of Tandem's images, e.g. registry.example.com/ml/.")
    ] = "",
    models_storage: Annotated[
        str, typer.Option(help="Size of each endpoint's model volume claim.")
    ] = "10Gi",
    unpack_models: Annotated[
        Path | None,
        typer.Option(help="Also write the model volume's content here, to copy onto it."),
    ] = None,
) -> None:
    """Write Kubernetes manifests: gateway and sidecars in one pod, Service, probes, PDB, HPA."""
    from gateway.ops.k8s import Options
    from gateway.ops.k8s_files import render_files, render_stream, write_models
    from pipelines.spec import load_specs

    args = shlex.join(sys.argv[2:])
    with failures():
        loaded = load_specs(specs)
        options = Options(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            target_invocations=target_invocations,
            target_backlog=target_backlog,
            registry=registry,
            models_storage=models_storage,
        )
        if output is None:
            _write(render_stream(loaded, options, args=args), None)
        else:
            for relative, text in render_files(loaded, options, args=args).items():
                _write(text, output / relative)
            typer.echo(f"wrote {output}/ (kubectl apply -k {output}/<endpoint>)", err=True)
        if unpack_models is not None:
            write_models(loaded, unpack_models)
            typer.echo(f"unpacked models into {unpack_models}/", err=True)


def _write(text: str, path: Path | None) -> None:
    """Stdout, or a file replaced whole: never half-written."""
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
