"""A request that is not a well-formed JSON 1.1 call answers the protocol's own error shape.

Before any operation's input is read: a body that is no JSON (or no JSON object), a wrong
Content-Type, an X-Amz-Target that names no SageMaker operation or none at all. Each is checked
on the wire (``x-amzn-ErrorType``, the JSON 1.1 content type, a request id, ``__type`` and
``message``) with plain httpx, since boto3 never sends such a request, against the same state as
``test_bad_input.py``: nothing in the database changes.
"""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.control.conftest import World

JSON11 = "application/x-amz-json-1.1"

RAW = [
    ("not-json", {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": JSON11}, b"{",
     "SerializationException", "not valid JSON"),
    ("not-an-object", {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": JSON11}, b"[1]",
     "SerializationException", "JSON object"),
    ("wrong-content-type", {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": "text/plain"},
     b"{}", "SerializationException", "Content-Type"),
    ("unknown-operation", {"X-Amz-Target": "SageMaker.Frobnicate", "Content-Type": JSON11},
     b"{}", "UnknownOperationException", "SageMaker.Frobnicate"),
    ("no-target", {"Content-Type": JSON11}, b"{}", "UnknownOperationException", "X-Amz-Target"),
    ("other-service", {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": JSON11},
     b"{}", "UnknownOperationException", "X-Amz-Target"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "body", "code", "fragment"), [r[1:] for r in RAW], ids=[r[0] for r in RAW]
)
def test_malformed_requests_answer_json_1_1_errors(
    serving: World, headers: dict[str, str], body: bytes, code: str, fragment: str
) -> None:
    before = serving.snapshot()
    response = httpx.post(serving.url, content=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == code
    assert response.headers["content-type"] == JSON11
    assert response.headers["x-amzn-RequestId"]
    payload = response.json()
    assert payload["__type"] == code and fragment in payload["message"]
    assert serving.snapshot() == before
