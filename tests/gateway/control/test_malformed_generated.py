"""Generated malformed calls for every operation: a 400 in SageMaker's shape, nothing changed.

Hypothesis builds an input for an operation from botocore's model of it (members of the right
types, not necessarily valid), then breaks it in one of the ways a careless or hostile client
would: a number that is not finite or too large for its type, a NUL or a lone surrogate in a
string, nesting deeper than any shape, a body that is not UTF-8 or is cut short. Whatever the
operation and wherever the break, the answer is HTTP 400 with ``x-amzn-ErrorType`` and a JSON
body naming the problem (never ``InternalFailure``), and the database is as it was.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.control.plane import OPERATIONS
from gateway.control.shapes import service_model
from tests.gateway.control.conftest import World

JSON11 = "application/x-amz-json-1.1"
#: Codes a malformed call may get; anything else (InternalFailure above all) fails the test.
CLIENT_ERRORS = {"SerializationException", "ValidationException"}
#: Leaves that no member of any type may hold, as JSON text (``json`` writes NaN this way).
BAD_NUMBERS = [float("nan"), float("inf"), float("-inf"), 10**40, -(10**40), 10**400]
BAD_TEXT = ["a\x00b", "\x00", "x\ud800y"]
MAX_MEMBERS = 6


def value_of(shape: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value of ``shape``'s type (its members, lists and maps filled in, a few levels deep)."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 4:
            return st.just({})
        members = dict(list(shape.members.items())[:40])
        required = {
            n: value_of(members[n], depth + 1) for n in shape.required_members if n in members
        }
        optional = {n: value_of(m, depth + 1) for n, m in members.items() if n not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "list":
        return st.lists(value_of(shape.member, depth + 1), max_size=2 if depth < 4 else 0)
    if kind == "map":
        keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
        return st.dictionaries(keys, value_of(shape.value, depth + 1), max_size=2)
    if kind in ("string", "blob"):
        enum = shape.metadata.get("enum")
        return st.sampled_from(enum) if enum else st.text("abc-1", min_size=1, max_size=8)
    if kind in ("integer", "long"):
        return st.integers(0, 10)
    if kind in ("float", "double"):
        return st.floats(0, 10)
    if kind == "boolean":
        return st.booleans()
    return st.integers(0, 10**9)  # timestamps (epoch seconds); documents take any JSON


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` a leaf or a container sits, the root's members first."""
    found = [here] if here else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*here, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*here, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value.get(head), rest, new)}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def deep(levels: int) -> Any:
    out: Any = []
    for _ in range(levels):
        out = [out]
    return out


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, bytes]:
    """(operation, body): a well-typed input for the operation with one thing broken."""
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    shape = service_model().operation_model(operation).input_shape
    params = draw(value_of(shape))
    breaks = ["number", "text", "nesting", "encoding", "truncated"]
    how = draw(st.sampled_from(breaks))
    if how in ("encoding", "truncated"):
        text = json.dumps(params)
        if how == "truncated":
            return operation, text.encode()[: draw(st.integers(1, max(1, len(text) - 1)))]
        return operation, text.encode("utf-16" if draw(st.booleans()) else "utf-32")
    where = draw(st.sampled_from(paths(params) or [()]))
    if where == ():
        name = draw(st.sampled_from(sorted(shape.members)))
        where = (name,)
    leaf = {
        "number": st.sampled_from(BAD_NUMBERS),
        "text": st.sampled_from(BAD_TEXT),
        "nesting": st.just(deep(200)),
    }[how]
    broken = replaced(params, where, draw(leaf))
    return operation, json.dumps(broken).encode()


def test_the_generator_breaks_a_member_of_every_operation() -> None:
    """Every operation Tandem implements has an input shape the generator can fill."""
    for operation in OPERATIONS:
        assert service_model().operation_model(operation).input_shape is not None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=malformed())
def test_every_malformed_call_is_a_client_error_and_changes_nothing(
    serving: World, call: tuple[str, bytes]
) -> None:
    operation, body = call
    before = serving.snapshot()
    response = httpx.post(
        serving.url,
        content=body,
        headers={"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": JSON11},
        timeout=30,
    )
    assert response.status_code == 400, (operation, body[:300], response.text)
    code = response.headers["x-amzn-ErrorType"]
    assert code in CLIENT_ERRORS, (operation, body[:300], response.text)
    document = response.json()
    assert document["__type"] == code and document["message"]
    assert serving.snapshot() == before


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_numbers_no_type_can_hold_are_refused_in_every_numeric_member(
    serving: World, value: Any
) -> None:
    """The one place numbers are checked covers each operation's numeric members."""
    before = serving.snapshot()
    body = {
        "EndpointConfigName": "n",
        "ProductionVariants": [
            {"VariantName": "A", "ModelName": "m", "InitialInstanceCount": value}
        ],
    }
    response = httpx.post(
        serving.url,
        content=json.dumps(body).encode(),
        headers={"X-Amz-Target": "SageMaker.CreateEndpointConfig", "Content-Type": JSON11},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"
    assert serving.snapshot() == before


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_a_timestamp_that_names_no_date_is_refused(serving: World, value: Any) -> None:
    """Epoch seconds past year 9999 (or not finite) are no time: refused, never a 200."""
    response = httpx.post(
        serving.url,
        content=json.dumps({"CreationTimeAfter": value}).encode(),
        headers={"X-Amz-Target": "SageMaker.ListEndpointConfigs", "Content-Type": JSON11},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"
