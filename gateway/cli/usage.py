"""``tandem usage``: what each endpoint, variant, component or model used, and its cost.

Reads the gateway's ``GET /usage`` (an admin's), so it shows what the running gateway's ledger
holds, the current hour included. ``json`` is a list of objects, one per group.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Annotated, Any

import typer

from gateway.cli.common import EXIT_FAILED, EXIT_INVALID, fail
from gateway.cli.credentials import ANONYMOUS, DEFAULT_REGION, Credentials, with_credentials
from gateway.cli.endpoints import DEFAULT_URL, Url

FORMATS = ("table", "csv", "json")
#: What the table shows (csv and json have every column).
TABLE_COLUMNS = (
    ("invocations", "Invocations"),
    ("errors_4xx", "4xx"),
    ("errors_5xx", "5xx"),
    ("model_errors", "Model err"),
    ("model_seconds", "Model s"),
    ("overhead_seconds", "Overhead s"),
    ("bytes_in", "Bytes in"),
    ("bytes_out", "Bytes out"),
    ("loads", "Loads"),
    ("memory_gib_hours", "GiB·h"),
    ("instance_hours", "Inst·h"),
    ("compute_share", "Compute %"),
    ("memory_share", "Memory %"),
    ("cost_by_compute", "Cost (compute)"),
    ("cost_by_memory", "Cost (memory)"),
)


@with_credentials
def usage(
    since: Annotated[
        str, typer.Option(help="Start: a duration ago (2h, 30m, 7d), epoch seconds or ISO 8601.")
    ] = "24h",
    until: Annotated[str, typer.Option(help="End, as --since; default now.")] = "now",
    by: Annotated[str, typer.Option(help="Group by endpoint, variant, component or model.")] = (
        "model"
    ),
    top: Annotated[
        int | None, typer.Option(help="Only the N groups with the most invocations.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table, csv or json (a list of objects).")
    ] = "table",
    url: Url = DEFAULT_URL,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """Show the usage ledger: invocations, compute, memory and cost per group."""
    from gateway.usage.report import UsageQueryError, check_by, parse_time

    now = time.time()
    try:
        check_by(by, "--by")
        start = parse_time("--since", since, now)
        end = parse_time("--until", until, now)
    except UsageQueryError as exc:
        fail(EXIT_INVALID, str(exc))
    if output_format not in FORMATS:
        fail(EXIT_INVALID, f"--format {output_format!r}: use one of {', '.join(FORMATS)}")
    if top is not None and top < 1:
        fail(EXIT_INVALID, f"--top {top}: give 1 or more")
    if end <= start:
        fail(EXIT_INVALID, f"--until {until!r} must be after --since {since!r}")
    params: dict[str, str] = {"since": repr(start), "until": repr(end), "by": by}
    if top is not None:
        params["top"] = str(top)
    headers = _auth(f"{url.rstrip('/')}/usage", params, credentials)
    answer = _get(url, params, headers)
    names: list[str] = answer["names"]
    columns: list[str] = answer["columns"]
    groups: list[dict[str, Any]] = answer["groups"]
    if output_format == "json":
        sys.stdout.write(json.dumps(groups, indent=2) + "\n")
    elif output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=[*names, *columns], lineterminator="\n")
        writer.writeheader()
        writer.writerows(groups)
    else:
        _table(names, groups)


def _auth(url: str, params: dict[str, str], given: Credentials) -> dict[str, str]:
    """The headers that authenticate the call: ``X-Api-Key``, else a SigV4 signature with the
    given or the usual AWS credentials (as ``tandem endpoints`` signs), else none."""
    if given.api_key:
        return {"X-Api-Key": given.api_key}
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.exceptions import BotoCoreError

    keys = (given.access_key, given.secret_key)
    if (keys[0] is None) != (keys[1] is None):
        fail(EXIT_INVALID, "give --access-key and --secret-key together")
    session = botocore.session.get_session()
    try:
        found = Credentials(*keys) if keys[0] and keys[1] else session.get_credentials()
    except BotoCoreError as exc:
        fail(EXIT_INVALID, f"cannot read the AWS configuration: {exc}")
    if found is None:
        return {}
    request = AWSRequest(method="GET", url=url, params=params)
    region = given.region or session.get_config_variable("region") or DEFAULT_REGION
    SigV4Auth(found, "sagemaker", region).add_auth(request)
    return dict(request.headers.items())


def _get(url: str, params: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    import httpx  # only client commands need it; keep `tandem --help` fast

    try:
        response = httpx.get(f"{url.rstrip('/')}/usage", params=params, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        fail(EXIT_FAILED, f"cannot reach the gateway at {url}: {exc}")
    if response.status_code != 200:
        try:
            message = response.json().get("Message") or response.text
        except ValueError:
            message = f"HTTP {response.status_code}: is {url} a Tandem gateway?"
        fail(EXIT_INVALID if response.status_code == 400 else EXIT_FAILED, message)
    body: dict[str, Any] = response.json()
    return body


def _table(names: list[str], groups: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None)
    for name in names:
        table.add_column(name.capitalize())
    for _, title in TABLE_COLUMNS:
        table.add_column(title, justify="right")
    for group in groups:
        cells = [group.get(name) or "-" for name in names]
        cells += [_cell(key, group.get(key)) for key, _ in TABLE_COLUMNS]
        table.add_row(*cells)
    Console(width=250).print(table)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_share"):
        return f"{value * 100:.1f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
