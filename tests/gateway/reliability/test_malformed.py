"""Malformed requests of every kind: a 4xx with a message, and the container never restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import malformed

pytestmark = [pytest.mark.slow, pytest.mark.sklearn]


def test_every_malformed_request_gets_a_4xx_with_a_message(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    result = malformed.run(rounds=1, workdir=tmp_path)
    by_case = {row["case"]: row for row in result["results"]}
    assert result["cases_not_4xx_with_message"] == [], result["results"]
    assert result["restarts_after"] == result["restarts_before"] == {"model": 0}
    assert result["healthy_after"] and result["gateway_alive"]
    assert result["valid_request_after"]  # the model's own prediction, compared in the script
    assert by_case["huge header (1 MiB)"]["status"] == 431
    assert by_case["oversize chunked body (7 MiB)"]["error_type"] == "ValidationError"
    unknown = by_case["unknown endpoint"]["message"]
    assert unknown == "Endpoint nope of account 000000000000 not found."
    assert by_case["bad JSON"]["error_type"] == "ModelError"
