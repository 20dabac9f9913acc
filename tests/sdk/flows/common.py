"""Shared by the flows, which run in the SDK's own environment (no Tandem, no test code there)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import sagemaker
from sagemaker.sklearn import SKLearnModel

ROLE = os.environ["ROLE_ARN"]
INSTANCE = "ml.m5.large"


def args() -> dict[str, Any]:
    return json.loads(sys.argv[1])


def result(**values: Any) -> None:
    print("\nRESULT " + json.dumps(values), flush=True)  # after the SDK's progress dots


def sklearn_model(given: dict[str, Any], session: sagemaker.Session, **extra: Any) -> SKLearnModel:
    """The model as a user writes it: a training job's archive plus code in a source folder."""
    return SKLearnModel(
        model_data=given["model_data"],
        role=ROLE,
        entry_point=given["entry_point"],
        source_dir=given["source_dir"],
        framework_version="1.2-1",
        py_version="py3",
        sagemaker_session=session,
        **extra,
    )


def gone(session: sagemaker.Session, endpoint: str, timeout: float = 120) -> None:
    """Wait until the endpoint is deleted (DescribeEndpoint says it is not found)."""
    client = session.sagemaker_client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.describe_endpoint(EndpointName=endpoint)
        except client.exceptions.ClientError as exc:
            if "Could not find" in str(exc):
                return
            raise
        time.sleep(0.2)
    raise TimeoutError(f"endpoint {endpoint} still there after {timeout}s")
