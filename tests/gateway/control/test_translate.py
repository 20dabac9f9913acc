"""The one mapping between SageMaker's model + config and Tandem's spec, and model data roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.control.translate import (
    check_model_data,
    default_model_roots,
    framework_of,
    from_spec,
    parse_model_roots,
    to_spec,
)
from gateway.errors import ValidationException
from pipelines.spec import EndpointSpec, Execution, Framework, Mode, ModelCache, load_spec
from tests.support import ROOT

ECR = "763104351884.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("image", "framework"),
    [
        ("sklearn", Framework.SKLEARN),
        ("pytorch", Framework.PYTORCH),
        ("tensorflow", Framework.TENSORFLOW),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
         Framework.SKLEARN),
        (f"{ECR}/pytorch-inference:2.1-cpu-py310", Framework.PYTORCH),
        (f"{ECR}/tensorflow-inference:2.13-cpu", Framework.TENSORFLOW),
        (f"{ECR}/pytorch-inference@sha256:{'a' * 64}", Framework.PYTORCH),
        ("registry.example:5000/mirror/tensorflow-inference:2.13-cpu", Framework.TENSORFLOW),
        (f"{ECR}/pytorch-training:2.1-cpu-py310", None),
        ("registry.example/sagemaker-scikit-learn-extension:2.0", None),
        ("my-server:1.0", None),
    ],
)  # fmt: skip
def test_images_map_to_the_built_in_frameworks(image: str, framework: Framework | None) -> None:
    assert framework_of(image) == framework


def test_a_sagemaker_model_becomes_a_spec() -> None:
    model = {
        "ModelName": "churn",
        "PrimaryContainer": {
            "Image": f"{ECR}/pytorch-inference:2.1-cpu-py310",
            "ModelDataUrl": "s3://bucket/model.tar.gz",
            "ContainerHostname": "classifier",
            "Environment": {"SAGEMAKER_PROGRAM": "serve.py"},
        },
    }
    config = {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "Blue", "ModelName": "churn"}],
        "Tags": [{"Key": "tandem:timeout", "Value": "5"}],
    }
    spec = to_spec("ep", model, config)
    assert (spec.name, spec.variant, spec.timeout, spec.execution) == (
        "ep",
        "Blue",
        5.0,
        Execution.SERIAL,
    )
    (container,) = spec.containers
    assert container.framework is Framework.PYTORCH and container.image is None
    assert container.model_data == "s3://bucket/model.tar.gz"
    assert container.hostname == "classifier"
    assert container.environment == {"SAGEMAKER_PROGRAM": "serve.py"}


def test_a_command_travels_in_tandem_command() -> None:
    model = {
        "ModelName": "m",
        "PrimaryContainer": {
            "Image": "registry.example/server:1",
            "Environment": {"TANDEM_COMMAND": "python 'my server.py' --fast", "A": "1"},
        },
    }
    (container,) = to_spec("m", model).containers
    assert container.command == ["python", "my server.py", "--fast"]
    assert container.image == "registry.example/server:1"
    assert container.environment == {"A": "1"}  # the reserved name is not passed on


def test_an_unsplittable_command_names_its_field() -> None:
    model = {"PrimaryContainer": {"Environment": {"TANDEM_COMMAND": "python 'unclosed"}}}
    with pytest.raises(ValidationException, match=r"primaryContainer\.environment\.TANDEM_"):
        to_spec("m", model)


@pytest.mark.parametrize("example", ["churn", "zoo"])
def test_the_example_specs_survive_the_round_trip(example: str) -> None:
    spec = load_spec(ROOT / "pipelines" / "examples" / f"{example}.yaml")
    model, config = from_spec(spec)
    again = to_spec(spec.name, model, config)
    assert again.execution == spec.execution and again.variant == spec.variant
    assert again.hostnames == spec.hostnames
    for before, after in zip(spec.containers, again.containers, strict=True):
        assert after.model_data == spec.model_data_url(before)  # made absolute
        assert after.model_copy(update={"model_data": None}) == before.model_copy(
            update={"model_data": None}
        )
    assert from_spec(again) == (model, config)


def test_tandem_only_fields_survive_the_round_trip() -> None:
    spec = EndpointSpec.model_validate(
        {
            "name": "houses",
            "execution": "Direct",
            "timeout": 2.5,
            "containers": [
                {
                    "hostname": "h",
                    "framework": "sklearn",
                    "mode": "MultiModel",
                    "model_data": "s3://bucket/houses/",
                    "memory_limit": "3GiB",
                    "disk_cache_limit": 512,
                    "preload": ["a/model.tar.gz", "b"],
                    "model_cache": "Disabled",
                    "load_wait_timeout": 0.5,
                },
                {"hostname": "cmd", "command": ["python", "x.py"], "environment": {"K": "v"}},
            ],
        }
    )
    model, config = from_spec(spec)
    assert "Containers" in model and model["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert model["Containers"][0]["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}
    assert model["Containers"][1]["Environment"] == {"K": "v", "TANDEM_COMMAND": "python x.py"}
    again = to_spec("houses", model, config)
    assert again == spec
    assert again.containers[0].memory_limit == 3 * 2**30
    assert again.containers[0].model_cache is ModelCache.DISABLED
    assert again.containers[0].mode is Mode.MULTI_MODEL


def test_a_single_direct_container_keeps_its_mode() -> None:
    spec = EndpointSpec.model_validate(
        {"name": "one", "execution": "Direct", "containers": [{"hostname": "a", "image": "x:1"}]}
    )
    model, _ = from_spec(spec)
    assert "PrimaryContainer" not in model
    assert to_spec("one", model).execution is Execution.DIRECT


def test_model_roots(tmp_path: Path) -> None:
    assert default_model_roots() == (str(Path.cwd()), "s3://")
    assert parse_model_roots(None) == default_model_roots()
    assert parse_model_roots(" /models , s3://team/ ") == ("/models", "s3://team/")


def test_model_data_stays_under_its_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "m").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    roots = [str(root), "s3://team/models"]
    monkeypatch.chdir(root)

    assert check_model_data(str(root / "m"), roots) == str(root / "m")
    assert check_model_data("m", roots) == str(root / "m")  # relative: against the folder
    assert check_model_data(f"file://{root}/m", roots) == str(root / "m")
    assert check_model_data("s3://team/models/a.tar.gz", roots) == "s3://team/models/a.tar.gz"
    assert check_model_data(str(root / "new"), roots, exist=False) == str(root / "new")
    for url in (
        str(outside),
        str(root / "link"),  # a symlink out of the root
        str(root / ".." / "outside"),
        "s3://team/models-evil/a",  # a prefix only at a "/" boundary
        "s3://other/a",
    ):
        with pytest.raises(ValidationException, match="outside the model roots"):
            check_model_data(url, roots, member="primaryContainer.modelDataUrl")
    with pytest.raises(ValidationException, match="could not find model data"):
        check_model_data(str(root / "nope"), roots)
    with pytest.raises(ValidationException, match="not supported yet"):
        check_model_data("https://example.com/m.tar.gz", roots)
    with pytest.raises(ValidationException, match="unknown URL scheme"):
        check_model_data("ftp://example.com/m", roots)
    with pytest.raises(ValidationException, match="local path"):
        check_model_data("file://host/m", roots)
    with pytest.raises(ValidationException, match="must not be empty"):
        check_model_data(" ", roots)  # not the current folder
    assert check_model_data("s3://any/x", ["s3://"]) == "s3://any/x"


def test_a_spec_files_relative_submit_directory_is_its_folders(tmp_path: Path) -> None:
    spec = EndpointSpec.model_validate(
        {
            "name": "churn",
            "source": tmp_path,
            "containers": [
                {"framework": "sklearn", "environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "src"}},
                {"framework": "sklearn", "environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/c"}},
            ],
        }
    )
    model, _ = from_spec(spec)
    envs = [c["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] for c in model["Containers"]]
    assert envs == [str(tmp_path / "src"), "s3://b/c"]
