"""``List*`` as SQL: filters, a stable order and keyset pages behind an opaque ``NextToken``.

A page ends at a row; the token holds that row's sort value and key, and the next page starts
after it. Unlike an offset, this neither skips nor repeats a row when others are created or
deleted between two pages. The token also names the order it was made for, so a token from one
order is refused by another instead of silently paging wrongly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.state.records import BadToken, Query, SortBy

#: The column each ``SortBy`` reads; the key (the lower-cased name) breaks ties.
SORT_COLUMNS = {SortBy.NAME: "key", SortBy.CREATION_TIME: "created", SortBy.STATUS: "status"}


@dataclass(frozen=True, slots=True)
class Table:
    """What a table offers to ``List*``: its name and the optional columns it has."""

    name: str
    modified: bool = False
    status: bool = False


def select(
    table: Table, query: Query, columns: str = "*", equal: Mapping[str, Any] | None = None
) -> tuple[str, list[Any]]:
    """The SQL and arguments for one page, fetching one row more to know if another follows;
    ``equal``: further filters, column -> the value it must hold."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (equal or {}).items():
        where.append(f"{column} = ?")
        args.append(value)
    if query.name_contains:
        where.append("instr(key, ?) > 0")
        args.append(query.name_contains.lower())
    for column, bound, op in (
        ("created", query.created_before, "<"),
        ("created", query.created_after, ">"),
        ("modified", query.modified_before, "<"),
        ("modified", query.modified_after, ">"),
    ):
        if bound is None:
            continue
        if column == "modified" and not table.modified:
            raise ValueError(f"{table.name} has no last-modified time to filter on")
        where.append(f"{column} {op} ?")
        args.append(bound)
    if query.status is not None:
        if not table.status:
            raise ValueError(f"{table.name} has no status to filter on")
        where.append("status = ?")
        args.append(query.status)
    if query.sort_by is SortBy.STATUS and not table.status:
        raise ValueError(f"{table.name} has no status to sort on")
    column = SORT_COLUMNS[query.sort_by]
    direction = "DESC" if query.descending else "ASC"
    if query.token is not None:
        value, key = decode(query.token, query)
        where.append(f"({column}, key) {'<' if query.descending else '>'} (?, ?)")
        args.extend([value, key])
    sql = f"SELECT {columns} FROM {table.name}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {column} {direction}, key {direction} LIMIT ?"
    args.append(query.limit + 1)
    return sql, args


def next_token(rows: list[Any], query: Query) -> str | None:
    """The token after the page's last row, or ``None`` when ``rows`` holds no extra row."""
    if len(rows) <= query.limit:
        return None
    last = rows[query.limit - 1]
    value = last[SORT_COLUMNS[query.sort_by]]
    raw = json.dumps([query.sort_by.value, query.descending, value, last["key"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, query: Query) -> tuple[Any, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        sort_by, descending, value, key = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadToken("the NextToken is not one this gateway made") from exc
    if sort_by != query.sort_by.value or descending != query.descending:
        raise BadToken("the NextToken was made for another SortBy or SortOrder")
    if not isinstance(key, str) or not isinstance(value, str | int | float):
        raise BadToken("the NextToken is not one this gateway made")
    return value, key
