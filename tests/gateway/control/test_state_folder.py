"""No control-plane location may name the state folder, whatever the model roots say.

The roots of the ``world`` fixture hold the state folder (``tmp_path`` and ``tmp_path/state``),
as the default roots (the current folder) hold ``./.tandem``: every member that names a location
is refused inside it, and a folder read whole that holds it is refused too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.state import FILENAME
from tests.gateway.control.conftest import SKLEARN_IMAGE, World


def model(world: World, url: str) -> Callable[[], Any]:
    return lambda: world.sm.create_model(
        ModelName="x", PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": url}
    )


def capture(world: World, destination: str) -> Callable[[], Any]:
    world.model()
    return lambda: world.sm.create_endpoint_config(
        EndpointConfigName="x",
        ProductionVariants=[{"VariantName": "A", "ModelName": "m", "InitialInstanceCount": 1}],
        DataCaptureConfig={
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "Input"}],
        },
    )


def job(world: World, source: str, output: str) -> Callable[[], Any]:
    world.model()
    return lambda: world.sm.create_transform_job(
        TransformJobName="x",
        ModelName="m",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}}
        },
        TransformOutput={"S3OutputPath": output},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )


CASES = {
    "model data: the database": lambda w: model(w, str(w.state / FILENAME)),
    "model data: as file://": lambda w: model(w, f"file://{w.state / FILENAME}"),
    "model data: a folder that holds it": lambda w: model(w, str(w.state.parent)),
    "capture into it": lambda w: capture(w, str(w.state / "endpoints")),
    "job input: the state folder": lambda w: job(w, str(w.state), str(w.model_dir.parent)),
    "job input: a folder that holds it": lambda w: job(
        w, str(w.state.parent), str(w.model_dir.parent / "out")
    ),
    "job output into it": lambda w: job(w, str(w.model_dir), str(w.state / "out")),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_no_location_names_the_state_folder(world: World, case: str) -> None:
    call = CASES[case](world)
    before = world.snapshot()
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "state folder" in error["Message"], error["Message"]
    assert world.snapshot() == before
