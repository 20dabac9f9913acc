"""``tandem endpoints list|describe|delete``: a running gateway's endpoints, through its API.

These commands are clients of the gateway's SageMaker control plane (``POST /``, JSON 1.1), the
same API boto3 uses, so they show and do exactly what any SageMaker tool would. The client is
botocore's: it signs with the usual AWS credentials (environment, profile) or
``--access-key``/``--secret-key``; with ``--api-key`` it sends ``X-Api-Key`` and does not sign.
With no credentials at all the calls go unsigned, which a gateway without authentication takes.
A refused call prints ``tandem: <Code>: <Message>`` and exits 2 for ``ValidationException`` (bad
input, or no such name), else 1. botocore is imported only when a command runs, so that
``tandem --help`` stays fast. The tables ``list`` and ``describe`` print are built in
``endpoint_tables.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

import typer

from gateway.cli.common import EXIT_FAILED, EXIT_INVALID, fail, failures
from gateway.cli.credentials import ANONYMOUS, DEFAULT_REGION, Credentials, with_credentials
from gateway.cli.endpoint_tables import (
    components_table,
    containers_table,
    deployment_table,
    instances_table,
    local_time,
    scaling_tables,
    status_markup,
    variants_table,
)

DEFAULT_URL = "http://127.0.0.1:8080"
#: Statuses that move on by themselves; waiting ends on any other.
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
#: Seconds between two looks at an endpoint that is waited for.
POLL_INTERVAL = 0.5

Url = Annotated[str, typer.Option("--url", envvar="TANDEM_URL", help="Base URL of the gateway.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until the change is done.")]
Timeout = Annotated[float, typer.Option(help="Seconds --wait waits at most.")]

endpoints = typer.Typer(
    help="List, describe and delete the endpoints of a running gateway.",
    no_args_is_help=True,
)


def connect(url: str, credentials: Credentials = ANONYMOUS, service: str = "sagemaker") -> Any:
    """botocore's ``sagemaker`` client (or another ``service`` the gateway speaks on its port)
    for the gateway at ``url``: signed with the given or the usual AWS credentials, or unsigned
    with ``X-Api-Key`` when an API key is given."""
    api_key, access_key = credentials.api_key, credentials.access_key
    secret_key, region = credentials.secret_key, credentials.region
    import botocore
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    if (access_key is None) != (secret_key is None):
        fail(EXIT_INVALID, "give --access-key and --secret-key together")
    session = botocore.session.get_session()
    try:  # a profile that does not exist, a credentials file that does not parse ...
        found = api_key is None and access_key is None and session.get_credentials() is not None
    except BotoCoreError as exc:
        fail(EXIT_INVALID, f"cannot read the AWS configuration: {exc}")
    unsigned = api_key is not None or (access_key is None and not found)
    config = Config(
        retries={"total_max_attempts": 1},  # a Create* retried could answer "already exists"
        connect_timeout=5,
        read_timeout=60,
        **({"signature_version": botocore.UNSIGNED} if unsigned else {}),
    )
    try:
        client = session.create_client(
            service,
            endpoint_url=url,
            region_name=region or session.get_config_variable("region") or DEFAULT_REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
    except ValueError as exc:  # botocore's word for a URL it cannot use
        fail(EXIT_INVALID, f"--url {url!r}: {exc}")
    if api_key is not None:

        def add_key(request: Any, **_: Any) -> None:
            request.headers["X-Api-Key"] = api_key

        client.meta.events.register(f"before-sign.{service}", add_key)
    return client


def call_of(client: Any) -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
    """``call(operation, params)`` over ``client``: what ``gateway.control.apply`` drives."""
    from botocore import xform_name

    def call(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        answer = dict(getattr(client, xform_name(operation))(**params))
        answer.pop("ResponseMetadata", None)
        return answer

    return call


@contextlib.contextmanager
def remote_errors(url: str) -> Iterator[None]:
    """A refused call as ``tandem: <Code>: <Message>``; a gateway out of reach as one line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        ParamValidationError,
    )

    with failures():  # outside: some of botocore's errors are OSErrors too
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or "Error"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            message = error.get("Message") or f"HTTP {status}, no message: is {url} a gateway?"
            fail(
                EXIT_INVALID if code == "ValidationException" else EXIT_FAILED, f"{code}: {message}"
            )
        except ParamValidationError as exc:
            fail(EXIT_INVALID, str(exc))
        except (ConnectionError, HTTPClientError) as exc:
            fail(EXIT_FAILED, f"cannot reach the gateway at {url}: {exc}")
        except BotoCoreError as exc:
            fail(EXIT_FAILED, str(exc))


def settle(
    client: Any, name: str, *, timeout: float, gone: bool = False, say: Callable[[str], None]
) -> dict[str, Any] | None:
    """Look at endpoint ``name`` until it stops changing (or, with ``gone``, until it no longer
    exists); its last ``DescribeEndpoint``, ``None`` once gone. Each new status is ``say``-d."""
    from gateway.control.apply import describe

    call = call_of(client)
    deadline = time.monotonic() + timeout
    last: str | None = None
    while True:
        found = describe(call, "DescribeEndpoint", {"EndpointName": name})
        status = "deleted" if found is None else str(found["EndpointStatus"])
        if status != last:
            say(f"{name}: {status}")
            last = status
        if found is None or (not gone and status not in TRANSITIONAL):
            return found
        if time.monotonic() > deadline:
            fail(EXIT_FAILED, f"{name} is still {status} after {timeout:g}s")
        time.sleep(POLL_INTERVAL)


@endpoints.command("list")
@with_credentials
def list_endpoints(
    url: Url = DEFAULT_URL,
    name_contains: Annotated[
        str | None, typer.Option(help="Only endpoints whose name contains this.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only endpoints in this status, e.g. InService.")
    ] = None,
    page_size: Annotated[int, typer.Option(help="Endpoints per ListEndpoints call.")] = 50,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """A table of the gateway's endpoints: name, status, config, created, last modified."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    client = connect(url, credentials)
    filters = {"NameContains": name_contains, "StatusEquals": status}
    with remote_errors(url):
        pages = client.get_paginator("list_endpoints").paginate(
            **{k: v for k, v in filters.items() if v is not None},
            PaginationConfig={"PageSize": page_size},
        )
        summaries = [e for page in pages for e in page["Endpoints"]]
        configs = {e["EndpointName"]: _config_of(client, e["EndpointName"]) for e in summaries}
    console = Console(highlight=False)
    if not summaries:
        console.print(f"No endpoints on {url}.")
        return
    table = Table(header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("config", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("last modified", no_wrap=True)
    for e in summaries:
        table.add_row(
            escape(e["EndpointName"]),
            status_markup(e["EndpointStatus"]),
            escape(configs[e["EndpointName"]] or "-"),
            local_time(e.get("CreationTime")),
            local_time(e.get("LastModifiedTime")),
        )
    console.print(table)


@endpoints.command("describe")
@with_credentials
def describe_endpoint(
    name: Annotated[str, typer.Argument(help="Name of the endpoint.")],
    url: Url = DEFAULT_URL,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """An endpoint's status (and why it failed), its config's variants and its containers, and
    its autoscaling: scalable targets, policies and the last scaling activities."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    client = connect(url, credentials)
    call = call_of(client)
    with remote_errors(url):
        endpoint = call("DescribeEndpoint", {"EndpointName": name})
        serving = _config_parts(call, endpoint["EndpointConfigName"])
        pending_summary = endpoint.get("PendingDeploymentSummary")
        pending = None
        if pending_summary is not None:
            pending = _config_parts(call, pending_summary["EndpointConfigName"])
    console = Console(highlight=False)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("endpoint", escape(endpoint["EndpointName"]))
    facts.add_row("status", status_markup(endpoint["EndpointStatus"]))
    facts.add_row("arn", escape(endpoint["EndpointArn"]))
    facts.add_row("config", escape(endpoint["EndpointConfigName"]))
    facts.add_row("created", local_time(endpoint.get("CreationTime")))
    facts.add_row("last modified", local_time(endpoint.get("LastModifiedTime")))
    if pending_summary is not None:
        since = local_time(pending_summary.get("StartTime"))
        facts.add_row(
            "updating to", f"{escape(pending_summary['EndpointConfigName'])} (since {since})"
        )
    if endpoint.get("FailureReason"):
        facts.add_row("failure reason", f"[red]{escape(endpoint['FailureReason'])}[/red]")
    console.print(facts)
    steps = deployment_table(pending_summary) if pending_summary is not None else None
    if steps is not None:
        console.print()
        console.print(steps)
    counts = {
        v["VariantName"]: v
        for v in [
            *endpoint.get("ProductionVariants", []),
            *endpoint.get("ShadowProductionVariants", []),
        ]
    }
    for title, parts in (("config", serving), ("pending config", pending)):
        if parts is None:
            continue
        config, models = parts
        console.print()
        console.print(variants_table(f"{title} {config['EndpointConfigName']}", config, counts))
        for model in models:
            console.print(containers_table(model))
    live = admin_json(url, f"/endpoints/{name}", credentials)
    config = serving[0] if serving is not None else {}
    if all(not v.get("ModelName") for v in config.get("ProductionVariants", [])):
        with remote_errors(url):
            listed = call(
                "ListInferenceComponents", {"EndpointNameEquals": name, "MaxResults": 100}
            )
            components = [
                call("DescribeInferenceComponent", {"InferenceComponentName": c})
                for c in sorted(i["InferenceComponentName"] for i in listed["InferenceComponents"])
            ]
        console.print()
        console.print(components_table(components, live))
    console.print()
    if live is None:
        console.print(
            "[dim]instances: not shown (the gateway's /endpoints route did not answer)[/dim]"
        )
    else:
        console.print(instances_table(live))
    variants = [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]
    for table in _scaling(url, credentials, name, variants):
        console.print()
        console.print(table)


#: Scaling activities shown per variant, the newest first.
ACTIVITIES = 5


def _scaling(url: str, credentials: Credentials, name: str, variants: list[str]) -> list[Any]:
    """The endpoint's scalable targets, policies and last activities, read through the
    Application Auto Scaling API on the gateway's port; a dim line when it does not answer."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = connect(url, credentials, service="application-autoscaling")
    resources = [f"endpoint/{name}/variant/{variant}" for variant in variants]
    namespace = {"ServiceNamespace": "sagemaker"}
    try:
        targets = client.describe_scalable_targets(**namespace, ResourceIds=resources)
        policies, activities = [], []
        for found in targets["ScalableTargets"]:
            resource = {**namespace, "ResourceId": found["ResourceId"]}
            policies += client.describe_scaling_policies(**resource)["ScalingPolicies"]
            answer = client.describe_scaling_activities(**resource, MaxResults=ACTIVITIES)
            activities += answer["ScalingActivities"]
    except (BotoCoreError, ClientError) as exc:
        return [f"[dim]autoscaling: not shown (Application Auto Scaling answered: {exc})[/dim]"]
    return scaling_tables(targets["ScalableTargets"], policies, activities)


@endpoints.command("delete")
@with_credentials
def delete_endpoint(
    name: Annotated[str, typer.Argument(help="Name of the endpoint.")],
    url: Url = DEFAULT_URL,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    credentials: Credentials = ANONYMOUS,
) -> None:
    """Delete an endpoint (its requests in flight finish first); --wait: until it is gone."""
    client = connect(url, credentials)
    with remote_errors(url):
        call_of(client)("DeleteEndpoint", {"EndpointName": name})
        if wait:
            settle(client, name, timeout=timeout, gone=True, say=_say)
        else:
            _say(f"{name}: Deleting")


def admin_json(url: str, path: str, credentials: Credentials = ANONYMOUS) -> dict[str, Any] | None:
    """``GET path`` on the gateway's admin routes (what runs now, which the SageMaker API does
    not say), authenticated as ``connect`` does; ``None`` if it does not answer 200."""
    import botocore.session
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as AwsCredentials
    from botocore.exceptions import BotoCoreError

    target = f"{url.rstrip('/')}{path}"
    headers: dict[str, str] = {}
    if credentials.api_key is not None:
        headers["X-Api-Key"] = credentials.api_key
    else:
        session = botocore.session.get_session()
        with contextlib.suppress(BotoCoreError):
            found = (
                AwsCredentials(credentials.access_key, credentials.secret_key)
                if credentials.access_key and credentials.secret_key
                else session.get_credentials()
            )
            if found is not None:
                region = credentials.region or session.get_config_variable("region")
                request = AWSRequest(method="GET", url=target)
                SigV4Auth(found, "sagemaker", region or DEFAULT_REGION).add_auth(request)
                headers.update(dict(request.headers.items()))
    try:
        answer = httpx.get(target, headers=headers, timeout=10.0)
    except httpx.HTTPError:
        return None
    return dict(answer.json()) if answer.status_code == 200 else None


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _config_of(client: Any, name: str) -> str | None:
    """The endpoint's config (``ListEndpoints`` does not say it); ``None`` if it just went."""
    from gateway.control.apply import describe

    found = describe(call_of(client), "DescribeEndpoint", {"EndpointName": name})
    return None if found is None else str(found["EndpointConfigName"])


def _config_parts(
    call: Callable[[str, Mapping[str, Any]], dict[str, Any]], name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An endpoint config and the models of its variants."""
    config = call("DescribeEndpointConfig", {"EndpointConfigName": name})
    variants = [*config["ProductionVariants"], *config.get("ShadowProductionVariants", [])]
    names = dict.fromkeys(v["ModelName"] for v in variants if v.get("ModelName"))
    return config, [call("DescribeModel", {"ModelName": m}) for m in names]
