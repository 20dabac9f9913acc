"""``tandem capture tail``: the latest data capture records of an endpoint, one JSON per line.

The destination is the one the endpoint's config names (asked of the gateway with
``DescribeEndpoint``), or ``--destination`` to read the files without a gateway.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gateway.cli.common import EXIT_INVALID, fail, failures
from gateway.cli.credentials import ANONYMOUS, Credentials, with_credentials
from gateway.cli.endpoints import DEFAULT_URL, Url

capture = typer.Typer(help="Data capture: what an endpoint's requests and answers were.")


@capture.command("tail")
@with_credentials
def tail(
    endpoint: Annotated[str, typer.Argument(help="Name of the endpoint.")],
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records.")] = 10,
    variant: Annotated[str | None, typer.Option(help="Only this variant's records.")] = None,
    destination: Annotated[
        str | None,
        typer.Option(help="The capture destination (s3://, file:// or a folder); default: ask."),
    ] = None,
    url: Url = DEFAULT_URL,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """Print the latest captured records of ENDPOINT, oldest first."""
    from gateway.capture import latest_records
    from gateway.settings import GatewaySettings

    if destination is None:
        from gateway.cli.endpoints import call_of, connect, remote_errors

        call = call_of(connect(url, credentials))
        with remote_errors(url):
            described = call("DescribeEndpoint", {"EndpointName": endpoint})
        destination = described.get("DataCaptureConfig", {}).get("DestinationS3Uri")
        if not destination:
            fail(EXIT_INVALID, f"endpoint {endpoint} has no data capture configured")
    with failures():
        records = latest_records(
            destination,
            endpoint,
            lines,
            variant=variant,
            s3_endpoint_url=GatewaySettings().s3_endpoint_url,
        )
    for record in records:
        typer.echo(json.dumps(record, separators=(",", ":")))
    if not records:
        typer.echo(f"{endpoint}: no records under {destination}", err=True)
