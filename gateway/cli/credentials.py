"""How a command reaches a running gateway: the credential options every remote command takes.

``with_credentials`` adds ``--api-key``, ``--access-key``, ``--secret-key`` and ``--region`` to a
typer command and hands them to it as one ``Credentials``, so that no command spells them out.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

#: The region signed for when neither --region nor the AWS profile names one.
DEFAULT_REGION = "us-east-1"


ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TANDEM_API_KEY",
        help="API key (TANDEM_AUTH=api-key): sent as X-Api-Key, requests unsigned.",
    ),
]
AccessKey = Annotated[
    str | None,
    typer.Option(help="SigV4 access key (default: the AWS environment or profile)."),
]
SecretKey = Annotated[str | None, typer.Option(help="SigV4 secret key, with --access-key.")]
Region = Annotated[
    str | None,
    typer.Option(help=f"Region to sign for (default: the AWS profile's, else {DEFAULT_REGION})."),
]


@dataclass(frozen=True)
class Credentials:
    """What the command line gave to reach the gateway with (None: not given)."""

    api_key: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None


ANONYMOUS = Credentials()
_OPTIONS = (
    ("api_key", ApiKey),
    ("access_key", AccessKey),
    ("secret_key", SecretKey),
    ("region", Region),
)
Command = TypeVar("Command", bound=Callable[..., Any])


def with_credentials(command: Command) -> Command:
    """``command`` with the credential options, passed to it as ``credentials: Credentials``."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "credentials"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
        for name, hint in _OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = Credentials(**{name: kwargs.pop(name, None) for name, _ in _OPTIONS})
        return command(*args, credentials=given, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
