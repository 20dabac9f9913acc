"""Every malformed call answers SageMaker's error shape, names the field and changes nothing.

Each case runs against the same state (a model, a config and an endpoint in service) and checks
the code boto3 raises, that the message names what is wrong, and that every row of the database
is as it was. Requests that are not even a well-formed JSON 1.1 call are in
``test_malformed_requests.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.gateway.control.conftest import World


def sklearn(world: World, **extra: Any) -> dict[str, Any]:
    return {"Image": "sklearn", "ModelDataUrl": str(world.model_dir), **extra}


def multi(world: World, hostname: str) -> dict[str, Any]:
    return sklearn(world, ContainerHostname=hostname, Mode="MultiModel")


def variant(model: str = "m", name: str = "AllTraffic") -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1}


Case = tuple[str, Callable[[World], Any], str, list[str]]

CASES: list[Case] = [
    # (id, call, code, fragments the message must hold)
    (
        "missing-required",
        lambda w: w.raw.create_model(PrimaryContainer=sklearn(w)),
        "ValidationException",
        ["1 validation error detected", "Value null at 'modelName'", "must not be null"],
    ),
    (
        "wrong-type",
        lambda w: w.raw.create_model(ModelName=5, PrimaryContainer=sklearn(w)),
        "SerializationException",
        ["'modelName'", "must be a string"],
    ),
    (
        "over-long-name",
        lambda w: w.raw.create_model(ModelName="a" * 64, PrimaryContainer=sklearn(w)),
        "ValidationException",
        ["at 'modelName'", "Member must have length less than or equal to 63"],
    ),
    (
        "name-pattern",
        lambda w: w.raw.create_endpoint(EndpointName="x y", EndpointConfigName="c"),
        "ValidationException",
        [
            "Value 'x y' at 'endpointName' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
        ],
    ),
    (
        "two-errors",
        lambda w: w.raw.create_endpoint(EndpointName="x y"),
        "ValidationException",
        ["2 validation errors detected", "'endpointName'", "'endpointConfigName'"],
    ),
    (
        "enum",
        lambda w: w.raw.create_model(
            ModelName="n",
            Containers=[sklearn(w)],
            InferenceExecutionConfig={"Mode": "Parallel"},
        ),
        "ValidationException",
        ["'inferenceExecutionConfig.mode'", "enum value set: [Serial, Direct]"],
    ),
    (
        "nested-list-member",
        lambda w: w.raw.create_model(
            ModelName="n", Containers=[sklearn(w), {"Image": "has space"}]
        ),
        "ValidationException",
        ["'containers.2.member.image'"],
    ),
    (
        "environment-key",
        lambda w: w.raw.create_model(
            ModelName="n", PrimaryContainer=sklearn(w, Environment={"1BAD": "x"})
        ),
        "ValidationException",
        ["'primaryContainer.environment'", "Map keys must satisfy constraint"],
    ),
    (
        "too-many-containers",
        lambda w: w.raw.create_model(
            ModelName="n", Containers=[sklearn(w, ContainerHostname=f"h{i}") for i in range(16)]
        ),
        "ResourceLimitExceeded",
        ["'containers'", "16", "at most 15"],
    ),
    (
        "primary-and-containers",
        lambda w: w.sm.create_model(
            ModelName="n", PrimaryContainer=sklearn(w), Containers=[sklearn(w)]
        ),
        "ValidationException",
        ["'primaryContainer'", "'containers'", "both"],
    ),
    (
        "no-image-no-command",
        lambda w: w.sm.create_model(ModelName="n", PrimaryContainer={"ModelDataUrl": "s3://b/k"}),
        "ValidationException",
        ["'primaryContainer.image'", "TANDEM_COMMAND"],
    ),
    (
        "serial-with-two-multimodel-steps",
        lambda w: w.sm.create_model(
            ModelName="n",
            Containers=[multi(w, "a"), multi(w, "b")],
            InferenceExecutionConfig={"Mode": "Serial"},
        ),
        "ValidationException",
        ['Model "n" cannot run', "containers", "at most one MultiModel"],
    ),
    (
        "direct-without-hostnames",
        lambda w: w.sm.create_model(
            ModelName="n",
            Containers=[sklearn(w), sklearn(w)],
            InferenceExecutionConfig={"Mode": "Direct"},
        ),
        "ValidationException",
        ["ContainerHostname on every container"],
    ),
    (
        "multimodel-without-data",
        lambda w: w.sm.create_model(
            ModelName="n", PrimaryContainer={"Image": "sklearn", "Mode": "MultiModel"}
        ),
        "ValidationException",
        ["primaryContainer", "ModelDataUrl"],
    ),
    (
        "framework-and-command",
        lambda w: w.sm.create_model(
            ModelName="n", PrimaryContainer=sklearn(w, Environment={"TANDEM_COMMAND": "serve"})
        ),
        "ValidationException",
        ["primaryContainer", "TANDEM_COMMAND", "exclusive"],
    ),
    (
        "model-data-outside-roots",
        lambda w: w.sm.create_model(
            ModelName="n", PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "/etc"}
        ),
        "ValidationException",
        ["primaryContainer.modelDataUrl", "'/etc'", "TANDEM_MODEL_ROOTS"],
    ),
    (
        "model-data-missing",
        lambda w: w.sm.create_model(
            ModelName="n",
            PrimaryContainer={"Image": "sklearn", "ModelDataUrl": str(w.model_dir / "nope")},
        ),
        "ValidationException",
        ["primaryContainer.modelDataUrl", "could not find model data"],
    ),
    (
        "submit-directory-outside-roots",
        lambda w: w.sm.create_model(
            ModelName="n",
            PrimaryContainer=sklearn(w, Environment={"SAGEMAKER_SUBMIT_DIRECTORY": "/etc"}),
        ),
        "ValidationException",
        ["primaryContainer.environment.SAGEMAKER_SUBMIT_DIRECTORY", "'/etc'", "TANDEM_MODEL_ROOTS"],
    ),
    (
        "submit-directory-missing",
        lambda w: w.sm.create_model(
            ModelName="n",
            PrimaryContainer=sklearn(
                w, Environment={"SAGEMAKER_SUBMIT_DIRECTORY": f"file://{w.model_dir}/nope.tar.gz"}
            ),
        ),
        "ValidationException",
        ["primaryContainer.environment.SAGEMAKER_SUBMIT_DIRECTORY", "nope.tar.gz"],
    ),
    (
        "program-with-a-path",
        lambda w: w.sm.create_model(
            ModelName="n",
            Containers=[
                sklearn(w),
                sklearn(w, Environment={"SAGEMAKER_PROGRAM": "../code/inference.py"}),
            ],
        ),
        "ValidationException",
        [
            "containers.2.member.environment.SAGEMAKER_PROGRAM",
            "'../code/inference.py'",
            "not a path",
        ],
    ),
    (
        "model-package",
        lambda w: w.sm.create_model(
            ModelName="n", PrimaryContainer={"ModelPackageName": "pkg/1", "Image": "sklearn"}
        ),
        "ValidationException",
        ["primaryContainer.modelPackageName", "not supported"],
    ),
    (
        "existing-model",
        lambda w: w.sm.create_model(ModelName="M", PrimaryContainer=sklearn(w)),
        "ValidationException",
        ['Cannot create already existing model "arn:aws:sagemaker:us-east-1:000000000000:model/m"'],
    ),
    (
        "config-names-a-missing-model",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n", ProductionVariants=[variant("nope")]
        ),
        "ValidationException",
        ['Could not find model "nope".'],
    ),
    (
        "duplicate-variant-names",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n", ProductionVariants=[variant(), variant()]
        ),
        "ValidationException",
        ["productionVariants.2.member.variantName", "used twice"],
    ),
    (
        "all-weights-zero",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n",
            ProductionVariants=[
                {**variant(), "InitialVariantWeight": 0.0},
                {**variant(name="B"), "InitialVariantWeight": 0.0},
            ],
        ),
        "ValidationException",
        ["productionVariants", "InitialVariantWeight is 0"],
    ),
    (
        "shadow-named-like-production",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n",
            ProductionVariants=[variant()],
            ShadowProductionVariants=[variant()],
        ),
        "ValidationException",
        ["shadowProductionVariants.1.member.variantName", "used twice"],
    ),
    (
        "capture-sampling-over-100",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n",
            ProductionVariants=[variant()],
            DataCaptureConfig={
                "InitialSamplingPercentage": 101,
                "DestinationS3Uri": "s3://bucket/capture",
                "CaptureOptions": [{"CaptureMode": "Input"}],
            },
        ),
        "ValidationException",
        ["initialSamplingPercentage", "less than or equal to 100"],
    ),
    (
        "weights-unknown-variant",
        lambda w: w.sm.update_endpoint_weights_and_capacities(
            EndpointName="e",
            DesiredWeightsAndCapacities=[{"VariantName": "Nope", "DesiredWeight": 1.0}],
        ),
        "ValidationException",
        ['variant "Nope"', "AllTraffic"],
    ),
    (
        # Every variant without a model is a config for inference components; some is wrong.
        "variant-without-model",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n",
            ProductionVariants=[
                {"VariantName": "A", "ModelName": "m"},
                {"VariantName": "B"},
            ],
        ),
        "ValidationException",
        ["'productionVariants.2.member.modelName'"],
    ),
    (
        "bad-timeout-tag",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="n",
            ProductionVariants=[variant()],
            Tags=[{"Key": "tandem:timeout", "Value": "-1"}],
        ),
        "ValidationException",
        ["tags.tandem:timeout"],
    ),
    (
        "existing-config",
        lambda w: w.sm.create_endpoint_config(
            EndpointConfigName="c", ProductionVariants=[variant()]
        ),
        "ValidationException",
        ['Cannot create already existing endpoint configuration "arn:aws:sagemaker:'],
    ),
    (
        "unknown-config",
        lambda w: w.sm.create_endpoint(EndpointName="n", EndpointConfigName="nope"),
        "ValidationException",
        ['Could not find endpoint configuration "nope".'],
    ),
    (
        "existing-endpoint",
        lambda w: w.sm.create_endpoint(EndpointName="E", EndpointConfigName="c"),
        "ValidationException",
        [
            "Cannot create already existing endpoint "
            '"arn:aws:sagemaker:us-east-1:000000000000:endpoint/e".'
        ],
    ),
    (
        "update-unknown-endpoint",
        lambda w: w.sm.update_endpoint(EndpointName="nope", EndpointConfigName="c"),
        "ValidationException",
        ['Could not find endpoint "nope".'],
    ),
    (
        "update-to-unknown-config",
        lambda w: w.sm.update_endpoint(EndpointName="e", EndpointConfigName="nope"),
        "ValidationException",
        ['Could not find endpoint configuration "nope".'],
    ),
    (
        "delete-unknown-endpoint",
        lambda w: w.sm.delete_endpoint(EndpointName="nope"),
        "ValidationException",
        ['Could not find endpoint "nope".'],
    ),
    (
        "delete-unknown-model",
        lambda w: w.sm.delete_model(ModelName="nope"),
        "ValidationException",
        ['Could not find model "nope".'],
    ),
    (
        "bad-next-token",
        lambda w: w.sm.list_endpoints(NextToken="not-a-token"),
        "ValidationException",
        ["'nextToken'"],
    ),
    (
        "max-results",
        lambda w: w.raw.list_models(MaxResults=101),
        "ValidationException",
        ["'maxResults'", "less than or equal to 100"],
    ),
    (
        "not-implemented-operation",
        lambda w: w.sm.list_training_jobs(),
        "UnknownOperationException",
        ["SageMaker.ListTrainingJobs", "not implemented"],
    ),
]


@pytest.mark.parametrize(
    ("call", "code", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_changes_nothing(
    serving: World, call: Callable[[World], Any], code: str, fragments: list[str]
) -> None:
    before = serving.snapshot()
    with pytest.raises(ClientError) as err:
        call(serving)
    error = err.value.response["Error"]
    assert error["Code"] == code, error
    for fragment in fragments:
        assert fragment in error["Message"], (fragment, error["Message"])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert serving.snapshot() == before
    assert serving.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "InService"
