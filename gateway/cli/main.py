"""The ``tandem`` command line. Imports stay light: ``serve`` loads the server only when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.batch import batch
from gateway.cli.capture import capture
from gateway.cli.common import EXIT_INVALID, fail, failures
from gateway.cli.deploy import deploy, export
from gateway.cli.docker import build, compose
from gateway.cli.endpoints import endpoints
from gateway.cli.invoke import invoke
from gateway.cli.load import loadtest
from gateway.cli.scale import haproxy, k8s
from gateway.cli.usage import usage

app = typer.Typer(
    name="tandem",
    help="Self-hosted, SageMaker-compatible inference: one gateway, many model containers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("invoke")(invoke)
app.command("loadtest")(loadtest)
app.command("batch")(batch)
app.command("build")(build)
app.command("compose")(compose)
app.command("haproxy")(haproxy)
app.command("k8s")(k8s)
app.command("deploy")(deploy)
app.command("export")(export)
app.command("usage")(usage)
app.add_typer(endpoints, name="endpoints")
app.add_typer(capture, name="capture")


@app.command()
def serve(
    specs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Endpoint spec files (YAML), one per endpoint. None: serve what the state "
            "folder holds and wait for SageMaker API calls."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default 127.0.0.1: this machine only) [TANDEM_HOST]."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default 8080) [TANDEM_PORT].")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Folder for model dirs and logs [TANDEM_STATE_DIR].")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="process, docker or external [TANDEM_BACKEND].")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error [TANDEM_LOG_LEVEL].")
    ] = None,
) -> None:
    """Validate the specs, start every container, wait until all are healthy, then serve."""
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    flags = {"host": host, "port": port, "state_dir": state_dir, "backend": backend}
    flags["log_level"] = log_level
    try:
        settings = GatewaySettings.model_validate({k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        fail(EXIT_INVALID, "invalid settings:\n  " + "\n  ".join(problems))

    from gateway.serve import run

    with failures():
        code = run(specs or [], settings)
    raise typer.Exit(code)


def main() -> None:
    app()
