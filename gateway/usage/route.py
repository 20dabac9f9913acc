"""``GET /usage``: the ledger for an admin, as ``tandem usage`` reads it.

Query: ``since``, ``until`` (``now``, a duration ago such as ``2h``, epoch seconds or ISO 8601;
default the last 24 hours), ``by`` (endpoint, variant, component, model; default model),
``top`` (the N groups with the most invocations). Answers
``{"since", "until", "by", "columns", "groups": [...]}``; bad input is a 400
``ValidationError`` naming the parameter, as the runtime API's errors are shaped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.usage.report import GROUPINGS, SUMMARY_COLUMNS, UsageQueryError, parse_time
from gateway.usage.service import UsageService

DAY = 86400.0


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        json.dumps({"Message": message}),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": code},
    )


def usage_route(
    service: UsageService, *, authorize: Callable[[Request], None] | None = None
) -> Route:
    async def endpoint(request: Request) -> Response:
        if authorize is not None:
            try:
                authorize(request)
            except Exception as exc:  # the guard's only refusal: not an admin
                return _error(403, "AccessDeniedException", str(exc))
        query = request.query_params
        unknown = sorted(set(query) - {"since", "until", "by", "top"})
        now = service.clock()
        try:
            if unknown:
                raise UsageQueryError(
                    f"unknown query parameter {unknown[0]!r}: use since, until, by, top"
                )
            since = parse_time("since", query.get("since", "24h"), now)
            until = parse_time("until", query.get("until", "now"), now)
            if until <= since:
                raise UsageQueryError(f"until ({until:.0f}) must be after since ({since:.0f})")
            by = query.get("by", "model")
            top_text = query.get("top")
            top = None
            if top_text is not None:
                if not top_text.isdigit():
                    raise UsageQueryError(f"top {top_text!r} must be a whole number, 1 or more")
                top = int(top_text)
            groups = await asyncio.to_thread(service.report, since, until, by, top)
        except UsageQueryError as exc:
            return _error(400, "ValidationError", str(exc))
        body = {
            "since": since,
            "until": until,
            "by": by,
            "names": list(GROUPINGS[by]),
            "columns": list(SUMMARY_COLUMNS),
            "groups": groups,
        }
        return Response(json.dumps(body), media_type="application/json")

    return Route("/usage", endpoint, methods=["GET"], name="usage")
