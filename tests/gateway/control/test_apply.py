"""A spec file applied through the control plane: created, left alone, updated, retried."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.control.apply import Applied, apply_spec, versioned
from gateway.errors import ValidationException
from gateway.state import EndpointStatus
from pipelines.spec import load_spec
from tests.gateway.control.conftest import World


def spec_file(world: World, tmp_path: Path, **env: str) -> Path:
    path = tmp_path / "churn.yaml"
    spec = {
        "name": "churn",
        "containers": [
            {"framework": "sklearn", "model_data": "./models/m", "environment": env},
        ],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_spec_is_created_then_left_alone_then_updated(world: World, tmp_path: Path) -> None:
    spec = load_spec(spec_file(world, tmp_path))
    assert apply_spec(world.plane, spec) is Applied.CREATED
    got = world.sm.describe_endpoint(EndpointName="churn")
    assert got["EndpointStatus"] == "InService"
    (model,), config = versioned(spec)
    assert got["EndpointConfigName"] == config["EndpointConfigName"]
    assert config["EndpointConfigName"].startswith("churn-")
    described = world.sm.describe_model(ModelName=model["ModelName"])
    assert described["PrimaryContainer"]["ModelDataUrl"] == str(world.model_dir)

    before = world.snapshot()
    assert apply_spec(world.plane, load_spec(spec_file(world, tmp_path))) is Applied.UNCHANGED
    assert world.snapshot() == before

    changed = load_spec(spec_file(world, tmp_path, SAGEMAKER_PROGRAM="v2.py"))
    assert apply_spec(world.plane, changed) is Applied.UPDATED
    after = world.sm.describe_endpoint(EndpointName="churn")
    assert after["EndpointConfigName"] == versioned(changed)[1]["EndpointConfigName"]
    assert world.plane.plan("churn").spec.containers[0].environment == {  # type: ignore[union-attr]
        "SAGEMAKER_PROGRAM": "v2.py"
    }


def test_a_failed_endpoint_is_tried_again(world: World, tmp_path: Path) -> None:
    spec = load_spec(spec_file(world, tmp_path))
    world.reconciler.hold = True
    apply_spec(world.plane, spec)
    world.store.set_endpoint_status("churn", EndpointStatus.FAILED, "no /ping")
    world.reconciler.hold = False
    assert apply_spec(world.plane, spec) is Applied.CREATED
    got = world.sm.describe_endpoint(EndpointName="churn")
    assert got["EndpointStatus"] == "InService" and "FailureReason" not in got


def test_a_spec_outside_the_roots_is_refused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "x", "containers": [{"framework": "sklearn", "model_data": "/etc"}]}
        )
    )
    before = world.snapshot()
    with pytest.raises(ValidationException, match="outside the model roots"):
        apply_spec(world.plane, load_spec(path))
    assert world.snapshot() == before


def test_long_names_still_fit(world: World, tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    name = "a" * 63
    path.write_text(
        yaml.safe_dump(
            {"name": name, "containers": [{"framework": "sklearn", "model_data": "./models/m"}]}
        )
    )
    (model,), config = versioned(load_spec(path))
    assert len(model["ModelName"]) == 63 and len(config["EndpointConfigName"]) == 63
    assert apply_spec(world.plane, load_spec(path)) is Applied.CREATED
