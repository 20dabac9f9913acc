"""``tandem invoke``: call an endpoint from the shell and see which step cost what.

The answer body goes to stdout untouched (pipe it anywhere); the status, the headers that matter and
the per-step times from ``Server-Timing`` go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.calls import parse_server_timing
from gateway.cli.invoke_async import AsyncRequest, invoke_async
from gateway.cli.invoke_errors import print_error
from gateway.cli.invoke_stream import invoke_stream

DEFAULT_URL = "http://127.0.0.1:8080"


def invoke(
    endpoint: Annotated[str, typer.Argument(help="Name of the endpoint to call.")],
    body: Annotated[
        str | None,
        typer.Option("--body", "-b", help="Request body: @FILE, - for stdin, or literal text."),
    ] = None,
    content_type: Annotated[
        str | None, typer.Option("--content-type", "-c", help="Content-Type of the body.")
    ] = None,
    accept: Annotated[
        str | None, typer.Option("--accept", "-a", help="Accept: the answer's wanted type.")
    ] = None,
    target_container: Annotated[
        str | None,
        typer.Option("--target-container", "-t", help="Container hostname (Direct endpoints)."),
    ] = None,
    target_model: Annotated[
        str | None,
        typer.Option("--target-model", "-m", help="Model path under the prefix (MultiModel)."),
    ] = None,
    custom_attributes: Annotated[
        str | None, typer.Option("--custom-attributes", help="Passed to every container.")
    ] = None,
    url: Annotated[
        str, typer.Option("--url", envvar="TANDEM_URL", help="Base URL of the gateway.")
    ] = DEFAULT_URL,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the answer here, not to stdout.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 120.0,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Stream the answer: print parts as they come."),
    ] = False,
    asynchronous: Annotated[
        bool,
        typer.Option(
            "--async",
            help="InvokeEndpointAsync: queue the request, print its id and output location.",
        ),
    ] = False,
    input_location: Annotated[
        str | None,
        typer.Option(
            "--input-location",
            help="With --async: the input (s3://, file:// or a path the gateway can read); "
            "no body is sent.",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="With --async: wait for the answer (or failure), print it."),
    ] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="Seconds --wait waits (then exit 1).")
    ] = 900.0,
) -> None:
    """Invoke ENDPOINT and print its answer, with the time each step took."""
    import httpx  # only this command needs an HTTP client; keep `tandem --help` fast

    err = Console(stderr=True, highlight=False)
    headers = {
        name: value
        for name, value in (
            ("Content-Type", content_type),
            ("Accept", accept),
            ("X-Amzn-SageMaker-Target-Container-Hostname", target_container),
            ("X-Amzn-SageMaker-Target-Model", target_model),
            ("X-Amzn-SageMaker-Custom-Attributes", custom_attributes),
        )
        if value is not None
    }
    if asynchronous:
        _check_async(body, input_location, target_container, target_model, stream)
        if output is not None and not wait:
            raise typer.BadParameter(
                "with --async, the answer is written only with --wait", param_hint="--output"
            )
        payload = None if input_location is not None else _read_body(body)
        invoke_async(
            AsyncRequest(url, endpoint, payload, input_location, headers),
            timeout=timeout,
            wait=wait,
            wait_timeout=wait_timeout,
            output=output,
            err=err,
        )
        return
    for flag, given in (("--input-location", input_location), ("--wait", wait)):
        if given:
            raise typer.BadParameter("needs --async", param_hint=flag)
    payload = _read_body(body)
    if stream:
        invoke_stream(url, endpoint, payload, headers, timeout, err)
        return
    target = f"{url.rstrip('/')}/endpoints/{endpoint}/invocations"
    try:
        with httpx.Client(timeout=timeout) as client:
            # No Accept unless asked for, as boto3: the container answers with its default.
            del client.headers["Accept"]
            response = client.post(target, content=payload, headers=headers)
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot reach the gateway at {escape(url)}: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        code = response.headers.get("x-amzn-errortype", "Error")
        print_error(err, code, response.status_code, response.content)
        _print_timings(err, response.headers.get("server-timing"))
        raise typer.Exit(1)
    if output is not None:
        output.write_bytes(response.content)
    else:
        typer.echo(response.content, nl=sys.stdout.isatty())
    err.print(
        f"[green]{response.status_code}[/green] "
        f"{response.headers.get('content-type', '(no content type)')} · "
        f"variant {response.headers.get('x-amzn-invoked-production-variant', '?')} · "
        f"request {response.headers.get('x-amzn-requestid', '?')}"
    )
    if "x-amzn-sagemaker-custom-attributes" in response.headers:
        attributes = response.headers["x-amzn-sagemaker-custom-attributes"]
        err.print(f"custom attributes: {escape(attributes)}")
    _print_timings(err, response.headers.get("server-timing"))


def _check_async(
    body: str | None,
    input_location: str | None,
    target_container: str | None,
    target_model: str | None,
    stream: bool,
) -> None:
    """What InvokeEndpointAsync cannot take is refused here, before anything is sent."""
    unsupported = {
        "--target-container": target_container,
        "--target-model": target_model,
        "--stream": stream,
    }
    for flag, given in unsupported.items():
        if given:
            raise typer.BadParameter("InvokeEndpointAsync has no such option", param_hint=flag)
    if input_location is not None and body is not None:
        raise typer.BadParameter(
            "give --body (sent inline) or --input-location (read by the gateway), not both",
            param_hint="--input-location",
        )
    if input_location is None and body is None:
        raise typer.BadParameter(
            "--async needs an input: --input-location, or --body (inline, up to 128,000 bytes)",
            param_hint="--body",
        )


def _read_body(body: str | None) -> bytes:
    if body is None:
        return b""
    if body == "-":
        return sys.stdin.buffer.read()
    if body.startswith("@"):
        path = Path(body[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {path}: {exc.strerror or exc}", param_hint="--body"
            ) from exc
    return body.encode()


def _print_timings(err: Console, header: str | None) -> None:
    steps = parse_server_timing(header)
    if not steps:
        return
    table = Table(box=None, show_header=True, header_style="bold")
    table.add_column("step")
    table.add_column("ms", justify="right")
    for name, ms in steps:
        table.add_row(name, f"{ms:.3f}")
    table.add_row("[bold]total[/bold]", f"[bold]{sum(ms for _, ms in steps):.3f}[/bold]")
    err.print(table)
