"""``tandem invoke --stream``: InvokeEndpointWithResponseStream, each part printed as it arrives.

The parts go to stdout as they come (flushed each time, so a pipe sees them at once); the status
line, and a ``ModelStreamError`` ending the stream, go to stderr. The event stream is decoded with
botocore's own decoder, the one boto3 users iterate with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from gateway.cli.invoke_errors import print_error


def invoke_stream(
    url: str,
    endpoint: str,
    payload: bytes,
    headers: Mapping[str, str],
    timeout: float,
    err: Console,
) -> None:
    """Call the streaming route; print each ``PayloadPart`` on arrival; exit 1 on any error."""
    import httpx
    from botocore.eventstream import EventStreamBuffer

    sent = {("X-Amzn-SageMaker-Accept" if k == "Accept" else k): v for k, v in headers.items()}
    target = f"{url.rstrip('/')}/endpoints/{endpoint}/invocations-response-stream"
    parts = 0
    try:
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("POST", target, content=payload, headers=sent) as response,
        ):
            if response.status_code >= 400:
                response.read()
                code = response.headers.get("x-amzn-errortype", "Error")
                print_error(err, code, response.status_code, response.content)
                raise typer.Exit(1)
            err.print(
                f"[green]{response.status_code}[/green] "
                f"{response.headers.get('x-amzn-sagemaker-content-type', '(no content type)')} · "
                f"variant {response.headers.get('x-amzn-invoked-production-variant', '?')} · "
                f"request {response.headers.get('x-amzn-requestid', '?')}"
            )
            buffer = EventStreamBuffer()
            for chunk in response.iter_raw():
                buffer.add_data(chunk)
                for message in buffer:
                    parts += _print_event(err, message.headers, message.payload)
    except httpx.HTTPError as exc:
        err.print(f"[red]Streaming from {escape(url)} failed: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    err.print(f"{parts} parts")


def _print_event(err: Console, headers: Mapping[str, Any], payload: bytes) -> int:
    """Print one event: a part to stdout (1 returned), an error to stderr (then exit 1)."""
    if headers.get(":message-type") == "event" and headers.get(":event-type") == "PayloadPart":
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return 1
    if headers.get(":message-type") in ("exception", "error"):
        kind = headers.get(":exception-type") or headers.get(":error-code") or "Error"
        try:
            detail = json.loads(payload)
        except ValueError:
            detail = {"Message": payload.decode("utf-8", errors="replace")}
        code = f" ({detail['ErrorCode']})" if "ErrorCode" in detail else ""
        message = escape(str(detail.get("Message", "")))
        err.print(f"\n[red]{escape(str(kind))}{escape(code)}[/red]: {message}")
        raise typer.Exit(1)
    return 0
