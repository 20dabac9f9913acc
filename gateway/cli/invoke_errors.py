"""How ``tandem invoke`` shows an error answer of the runtime API, whichever way it called."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape


def print_error(err: Console, code: str, status: int, content: bytes) -> None:
    """SageMaker's error body (``Message``, and a container's original status) in one line."""
    try:
        detail = json.loads(content)
    except ValueError:
        detail = {"Message": content.decode("utf-8", errors="replace")}
    if not isinstance(detail, dict):
        detail = {"Message": str(detail)}
    message = escape(str(detail.get("Message", detail.get("message", ""))))
    err.print(f"[red]{escape(code)} ({status})[/red]: {message}", soft_wrap=True)
    if "OriginalStatusCode" in detail:
        err.print(f"original status: {detail['OriginalStatusCode']}")
