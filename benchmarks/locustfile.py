"""Locust load test for a Tandem endpoint, for people who already use locust.

    pip install locust            # not a Tandem dependency: `tandem loadtest` needs no locust
    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8080 --headless \\
        -u 50 -r 10 -t 2m

Configured by environment variables: ``TANDEM_ENDPOINT`` (endpoint name, default ``churn``),
``TANDEM_BODY`` (the payload, or ``@file``), ``TANDEM_CONTENT_TYPE`` (``text/csv``),
``TANDEM_TARGET_CONTAINER`` / ``TANDEM_TARGET_MODEL`` (Direct and MultiModel endpoints), and
``TANDEM_API_KEY`` when the gateway runs with ``TANDEM_AUTH=api-key``. Locust reports req/s and
percentiles; the gateway's ``/metrics`` has the ModelLatency/OverheadLatency split.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from locust import FastHttpUser, constant, task


def _body() -> bytes:
    value = os.environ.get("TANDEM_BODY", "CA,120,415,no,yes,180.5,200.1,195.3,10.2,1")
    return Path(value[1:]).read_bytes() if value.startswith("@") else value.encode()


ENDPOINT = os.environ.get("TANDEM_ENDPOINT", "churn")
BODY = _body()
HEADERS = {"Content-Type": os.environ.get("TANDEM_CONTENT_TYPE", "text/csv")}
for _env, _header in (
    ("TANDEM_TARGET_CONTAINER", "X-Amzn-SageMaker-Target-Container-Hostname"),
    ("TANDEM_TARGET_MODEL", "X-Amzn-SageMaker-Target-Model"),
    ("TANDEM_API_KEY", "X-Api-Key"),
):
    if os.environ.get(_env):
        HEADERS[_header] = os.environ[_env]


class EndpointUser(FastHttpUser):
    """One simulated client sending invocations back to back, as SageMaker's clients do."""

    wait_time = constant(0)

    @task
    def invoke(self) -> None:
        with self.client.post(
            f"/endpoints/{ENDPOINT}/invocations",
            data=cast(Any, BODY),  # typed str | dict, but bytes go out as they are
            headers=HEADERS,
            name=f"/endpoints/{ENDPOINT}/invocations",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                error = response.headers.get("x-amzn-ErrorType", "")
                response.failure(f"{response.status_code} {error}: {response.text[:200]}")
