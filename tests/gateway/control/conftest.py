"""The control plane served by a real uvicorn, driven by the real boto3 ``sagemaker`` client.

The running side is stood in for by a small reconciler and job runner that only write the states
the real ones would report; they are not under test here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from gateway.control import ControlPlane, control_app
from gateway.state import FILENAME, EndpointStatus, JobStatus, StateStore, WrongState
from tests.gateway.harness import serve

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


@dataclass
class Reconciler:
    """Moves each kicked endpoint to where the serving side would (``hold`` parks the kicks)."""

    store: StateStore
    hold: bool = False
    #: The failure reason the next update ends with (a rollback), if any.
    fail_update: str | None = None
    kicked: list[str] = field(default_factory=list)

    def kick(self, endpoint: str) -> None:
        self.kicked.append(endpoint)
        if not self.hold:
            self.settle(endpoint)

    def settle(self, endpoint: str) -> None:
        record = self.store.get_endpoint(endpoint)
        if record is None:
            return
        if record.status is EndpointStatus.CREATING:
            self.store.set_endpoint_status(
                endpoint, EndpointStatus.IN_SERVICE, expect={EndpointStatus.CREATING}
            )
        elif record.status is EndpointStatus.UPDATING:
            if self.fail_update is not None:
                self.store.rollback_update(endpoint, self.fail_update)
                self.fail_update = None
            else:
                self.store.finish_update(endpoint)
        elif record.status is EndpointStatus.DELETING:
            self.store.remove_endpoint(endpoint)


@dataclass
class Runner:
    """Records started jobs; a stop ends the job at once, as a runner that drained would."""

    store: StateStore
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def start(self, job: str) -> None:
        self.started.append(job)
        self.store.job_started(job)

    def stop(self, job: str) -> None:
        self.stopped.append(job)
        with contextlib.suppress(WrongState):  # it had finished meanwhile
            self.store.set_job_status(job, JobStatus.STOPPED, expect={JobStatus.STOPPING})


@dataclass
class World:
    url: str
    state: Path
    store: StateStore
    plane: ControlPlane
    reconciler: Reconciler
    runner: Runner
    #: boto3 with its own parameter checks (what users run).
    sm: Any
    #: boto3 without them, to send what only a raw client would.
    raw: Any
    #: An existing model folder under the allowed roots.
    model_dir: Path

    def snapshot(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every row of every table, read through a connection of its own."""
        conn = sqlite3.connect(self.state / FILENAME)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return sorted(
                (t, tuple(row)) for t in tables for row in conn.execute(f"SELECT * FROM {t}")
            )
        finally:
            conn.close()

    def model(self, name: str = "m", **container: Any) -> str:
        definition = {"Image": SKLEARN_IMAGE, "ModelDataUrl": str(self.model_dir), **container}
        return str(
            self.sm.create_model(
                ModelName=name, PrimaryContainer=definition, ExecutionRoleArn=ROLE
            )["ModelArn"]
        )

    def config(self, name: str = "c", model: str = "m", **variant: Any) -> str:
        spec = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1}
        return str(
            self.sm.create_endpoint_config(
                EndpointConfigName=name, ProductionVariants=[{**spec, **variant}]
            )["EndpointConfigArn"]
        )

    def endpoint(self, name: str = "e", config: str = "c") -> str:
        return str(
            self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)["EndpointArn"]
        )


def client(url: str, *, validate: bool = True) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, parameter_validation=validate, read_timeout=30),
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    state = tmp_path / "state"
    model_dir = tmp_path / "models" / "m"
    model_dir.mkdir(parents=True)
    (model_dir / "model.joblib").write_bytes(b"not read by the control plane")
    store = StateStore(state / FILENAME)
    reconciler, runner = Reconciler(store), Runner(store)
    plane = ControlPlane(store, model_roots=[tmp_path, "s3://"], reconciler=reconciler, jobs=runner)
    with serve(control_app(plane)) as url:
        yield World(
            url,
            state,
            store,
            plane,
            reconciler,
            runner,
            client(url),
            client(url, validate=False),
            model_dir,
        )
    store.close()


@pytest.fixture
def serving(world: World) -> World:
    """The world with a model, a config and an endpoint in service: what bad input must keep."""
    world.model()
    world.config()
    world.endpoint()
    return world


FAST = {"Delay": 0.05, "MaxAttempts": 200}


def wait_in_thread(world: World, waiter: str, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    """Run a boto3 waiter in a thread; the list gets ``None`` on success or the error."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            world.sm.get_waiter(waiter).wait(WaiterConfig=FAST, **kwargs)
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome
