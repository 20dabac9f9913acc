"""``tandem invoke --async``: InvokeEndpointAsync from the shell, and with ``--wait`` its answer.

Without ``--wait`` the 202's ids go to stdout as one JSON object (``InferenceId``,
``OutputLocation``, ``FailureLocation``, the names boto3's answer has) so a script can keep them.
With ``--wait`` the output and failure locations are polled until one of them exists; the answer
goes to stdout (or ``-o``) untouched, a failure's ``ErrorCode: Message`` to stderr with exit 1.
Locations are read as the gateway writes them (``gateway.asynchronous.storage``): a folder must be
one this machine sees, ``s3://`` uses the same endpoint settings as the gateway.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from gateway.cli.invoke_errors import print_error

#: The header each of ``tandem invoke``'s headers has in InvokeEndpointAsync (botocore's model).
_HEADERS = {
    "Content-Type": "X-Amzn-SageMaker-Content-Type",
    "Accept": "X-Amzn-SageMaker-Accept",
    "X-Amzn-SageMaker-Custom-Attributes": "X-Amzn-SageMaker-Custom-Attributes",
}
#: The gateway's own names for an S3-compatible endpoint, in its order (gateway/settings.py).
S3_ENDPOINT_ENV = ("TANDEM_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
#: Seconds between looks at the locations: short at first (fast answers), at most ``POLL_MAX``.
POLL_FIRST = 0.05
POLL_MAX = 1.0
#: The exit code when the gateway or the storage cannot be reached (as ``tandem invoke``'s).
EXIT_UNREACHABLE = 2


@dataclass(frozen=True)
class AsyncRequest:
    """One InvokeEndpointAsync call as the command line gave it: a body or an input location."""

    url: str
    endpoint: str
    payload: bytes | None
    input_location: str | None
    headers: Mapping[str, str]


def invoke_async(
    request: AsyncRequest,
    *,
    timeout: float,
    wait: bool,
    wait_timeout: float,
    output: Path | None,
    err: Console,
) -> None:
    """Submit one request; print where it will land, or (``wait``) what landed there."""
    accepted = submit(request, timeout, err)
    inference_id = accepted["InferenceId"]
    err.print(
        f"[green]202[/green] accepted · InferenceId {escape(inference_id)}"
        + (" · waiting for its answer" if wait else ""),
        soft_wrap=True,
    )
    if not wait:
        typer.echo(json.dumps(accepted))
        return
    await_answer(accepted, wait_timeout, output, err)


def submit(request: AsyncRequest, timeout: float, err: Console) -> dict[str, str]:
    """POST the request to the async route; its id and locations, or exit on an error answer."""
    import httpx

    url = request.url
    sent = {_HEADERS.get(k, k): v for k, v in request.headers.items()}
    if request.input_location is not None:
        sent["X-Amzn-SageMaker-InputLocation"] = request.input_location
    target = f"{url.rstrip('/')}/endpoints/{request.endpoint}/async-invocations"
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(target, content=request.payload or b"", headers=sent)
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot reach the gateway at {escape(url)}: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_UNREACHABLE) from exc
    if response.status_code >= 400:
        code = response.headers.get("x-amzn-errortype", "Error")
        print_error(err, code, response.status_code, response.content)
        raise typer.Exit(1)
    try:
        inference_id = str(response.json()["InferenceId"])
    except (ValueError, KeyError, TypeError):
        err.print(f"[red]Unexpected answer {response.status_code} from {escape(target)}[/red]")
        raise typer.Exit(1) from None
    return {
        "InferenceId": inference_id,
        "OutputLocation": response.headers.get("x-amzn-sagemaker-outputlocation", ""),
        "FailureLocation": response.headers.get("x-amzn-sagemaker-failurelocation", ""),
    }


def await_answer(
    accepted: Mapping[str, str], wait_timeout: float, output: Path | None, err: Console
) -> None:
    """Poll both locations until one exists; print the answer (exit 0) or the failure (exit 1)."""
    from gateway.asynchronous.storage import Storage, StorageError

    storage = Storage(s3_endpoint())
    answer_at, failure_at = accepted["OutputLocation"], accepted["FailureLocation"]
    started = time.monotonic()
    deadline = started + wait_timeout
    pause = POLL_FIRST
    try:
        while True:
            if answer_at and storage.exists(answer_at):
                data = storage.read(answer_at, sys.maxsize)
                if output is not None:
                    output.write_bytes(data)
                else:
                    typer.echo(data, nl=sys.stdout.isatty())
                waited = time.monotonic() - started
                err.print(f"answered in {waited:.2f} s: {escape(answer_at)}", soft_wrap=True)
                return
            if failure_at and storage.exists(failure_at):
                _print_failure(err, storage.read(failure_at, sys.maxsize), failure_at)
                raise typer.Exit(1)
            if time.monotonic() >= deadline:
                err.print(
                    f"[red]No answer within {wait_timeout:g} s[/red] (--wait-timeout): request "
                    f"{escape(accepted['InferenceId'])} may still be queued or running; its answer "
                    f"will be at {escape(answer_at)}, a failure at {escape(failure_at)}.",
                    soft_wrap=True,
                )
                raise typer.Exit(1)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 1.5, POLL_MAX)
    except StorageError as exc:
        err.print(
            f"[red]Cannot read the answer's location: {escape(str(exc))}[/red]", soft_wrap=True
        )
        raise typer.Exit(EXIT_UNREACHABLE) from exc


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint the gateway would use, from the same environment variables."""
    for name in S3_ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _print_failure(err: Console, content: bytes, location: str) -> None:
    """A failure object (``{"ErrorCode", "Message", "InferenceId"}``) as one line on stderr."""
    try:
        document: Any = json.loads(content)
    except ValueError:
        document = None
    if isinstance(document, dict) and "Message" in document:
        code = str(document.get("ErrorCode", "Failed"))
        message = str(document["Message"])
    else:
        code, message = "Failed", content.decode("utf-8", errors="replace")
    err.print(f"[red]{escape(code)}[/red]: {escape(message)}", soft_wrap=True)
    err.print(f"failure object: {escape(location)}", soft_wrap=True)
