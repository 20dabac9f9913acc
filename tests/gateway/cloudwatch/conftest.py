"""The gateway's app with the CloudWatch routes, served by a real uvicorn, read by real boto3.

No invocation path feeds the recorder yet (the data-plane core wires it), so the tests feed it
in-process, exactly as the core will, on a clock they move by hand: a flush or a read rolls up
at once and "25 hours later" takes no time. Clients: boto3's default (botocore resolves JSON 1.0
from the model's list) and the same client made to speak CBOR or the query protocol
(``client_for``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from gateway.cloudwatch import MetricApi, MetricService, cloudwatch_routes
from gateway.edge.app import create_app
from gateway.live import EndpointTable
from tests.gateway.harness import serve
from tests.gateway.processes import quick_settings

CONFIG = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
EP = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


class Clock:
    """The store's clock: real time at the start, moved only by the test."""

    def __init__(self) -> None:
        # The middle of a minute, so a few seconds either way stay in one bucket.
        self.now = float(int(time.time()) // 60 * 60 + 30)

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float = 0.0) -> datetime:
        return datetime.fromtimestamp(self.now + offset, UTC)


def client_for(url: str, protocol: str | None = None) -> Any:
    """boto3's ``cloudwatch`` client; ``protocol`` forces one the model lists."""
    session = botocore.session.get_session()
    if protocol is not None:
        loader = session.get_component("data_loader")
        # The loader caches the model it returns: the client is made from this changed copy.
        metadata = loader.load_service_model("cloudwatch", "service-2")["metadata"]
        metadata["protocol"] = protocol
        metadata["protocols"] = [protocol]  # what botocore resolves the protocol from
    return boto3.Session(botocore_session=session, **KEYS).client(
        "cloudwatch", endpoint_url=url, config=CONFIG
    )


@dataclass
class World:
    url: str
    clock: Clock
    service: MetricService
    #: boto3's default protocol (JSON 1.0).
    cw: Any

    @property
    def recorder(self) -> Any:
        return self.service.recorder

    def stats(self, name: str, *stats: str, period: int = 60, **kwargs: Any) -> list[Any]:
        """GetMetricStatistics of ``name`` on endpoint ``ep``, an hour either side of now."""
        answer = self.cw.get_metric_statistics(
            Namespace=kwargs.pop("namespace", "AWS/SageMaker"),
            MetricName=name,
            Dimensions=kwargs.pop("dimensions", EP),
            StartTime=self.clock.at(-3600),
            EndTime=self.clock.at(3600),
            Period=period,
            **({"Statistics": list(stats)} if stats else {}),
            **kwargs,
        )
        return sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    settings = quick_settings(tmp_path / "state")
    service = MetricService.from_settings(settings, clock=clock)
    app = create_app(EndpointTable(), settings, routes=cloudwatch_routes(MetricApi(service)))
    try:
        with serve(app) as url:
            yield World(url, clock, service, client_for(url))
    finally:
        service.store.close()
