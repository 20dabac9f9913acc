"""``RoutingConfig`` on a production variant: accepted, stored, described, carried into the spec.

Through the real boto3 client against the real control plane; the spec side through the one
translation both ways (``to_spec``/``from_spec``, ``endpoint_spec``/``config_parts``).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.control.translate import from_spec, to_spec
from gateway.control.variants import config_parts, endpoint_spec
from pipelines.spec import EndpointSpec, RoutingStrategy, SpecError, load_spec
from tests.gateway.control.conftest import World

FIELD = "productionVariants.1.member.routingConfig.routingStrategy"


def spec_of(world: World, config: str) -> EndpointSpec:
    """The spec the reconciler would run for ``config`` (what ``spec_for`` builds)."""
    record = world.store.get_config(config)
    assert record is not None
    return endpoint_spec("e", record.request, lambda m: world.store.get_model(m).request)  # type: ignore[union-attr]


@pytest.mark.parametrize("strategy", ["RANDOM", "LEAST_OUTSTANDING_REQUESTS"])
def test_a_strategy_is_stored_described_and_run(world: World, strategy: str) -> None:
    world.model()
    world.config(RoutingConfig={"RoutingStrategy": strategy})
    described = world.sm.describe_endpoint_config(EndpointConfigName="c")
    assert described["ProductionVariants"][0]["RoutingConfig"] == {"RoutingStrategy": strategy}
    assert spec_of(world, "c").routing_strategy is RoutingStrategy(strategy)


def test_without_one_a_variant_routes_to_the_least_busy_instance(world: World) -> None:
    world.model()
    world.config()
    described = world.sm.describe_endpoint_config(EndpointConfigName="c")
    assert "RoutingConfig" not in described["ProductionVariants"][0]
    assert spec_of(world, "c").routing_strategy is RoutingStrategy.LEAST_OUTSTANDING_REQUESTS


def test_each_variant_keeps_its_own(world: World) -> None:
    world.model()
    world.sm.create_endpoint_config(
        EndpointConfigName="two",
        ProductionVariants=[
            {"VariantName": "a", "ModelName": "m", "RoutingConfig": {"RoutingStrategy": "RANDOM"}},
            {"VariantName": "b", "ModelName": "m"},
        ],
    )
    spec = spec_of(world, "two")
    assert [v.routing_strategy for v in spec.variants] == [
        RoutingStrategy.RANDOM,
        RoutingStrategy.LEAST_OUTSTANDING_REQUESTS,
    ]
    assert [s.routing_strategy for s in spec.production()] == [
        RoutingStrategy.RANDOM,
        RoutingStrategy.LEAST_OUTSTANDING_REQUESTS,
    ]
    _, config = config_parts(spec)
    first, second = config["ProductionVariants"]
    assert first["RoutingConfig"] == {"RoutingStrategy": "RANDOM"}
    assert "RoutingConfig" not in second  # written back only where it was given


@pytest.mark.parametrize("strategy", ["FASTEST", "random", ""])
def test_an_unknown_strategy_is_a_validation_error_naming_the_field(
    world: World, strategy: str
) -> None:
    world.model()
    with pytest.raises(ClientError) as caught:
        world.raw.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "RoutingConfig": {"RoutingStrategy": strategy},
                }
            ],
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert FIELD in error["Message"] and "enum value set" in error["Message"]
    assert world.store.get_config("c") is None


def test_prefix_aware_routing_is_refused_by_name(world: World) -> None:
    """SageMaker's third strategy is for language models' prompt prefixes: Tandem has none."""
    world.model()
    with pytest.raises(ClientError) as caught:
        world.config(RoutingConfig={"RoutingStrategy": "PREFIX_AWARE"})
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert FIELD in error["Message"] and "LEAST_OUTSTANDING_REQUESTS" in error["Message"]
    assert world.store.get_config("c") is None


def test_a_missing_strategy_is_refused(world: World) -> None:
    world.model()
    with pytest.raises(ClientError) as caught:
        world.raw.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[{"VariantName": "v", "ModelName": "m", "RoutingConfig": {}}],
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "routingStrategy" in caught.value.response["Error"]["Message"]


# ---- the spec side ---------------------------------------------------------------------------

SPEC: dict[str, Any] = {
    "name": "houses",
    "containers": [{"framework": "sklearn", "model_data": "s3://bucket/m/"}],
}


def test_the_spec_field_survives_the_round_trip() -> None:
    spec = EndpointSpec.model_validate({**SPEC, "routing_strategy": "RANDOM"})
    model, config = from_spec(spec)
    assert config["ProductionVariants"][0]["RoutingConfig"] == {"RoutingStrategy": "RANDOM"}
    again = to_spec("houses", model, config)
    assert again.routing_strategy is RoutingStrategy.RANDOM
    assert from_spec(again) == (model, config)


def test_a_spec_without_it_writes_no_routing_config() -> None:
    _, config = from_spec(EndpointSpec.model_validate(SPEC))
    assert "RoutingConfig" not in config["ProductionVariants"][0]


def test_a_bad_strategy_in_a_spec_file_names_the_file_and_field(tmp_path: Any) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("name: e\nrouting_strategy: ROUND_ROBIN\ncontainers:\n  - framework: sklearn\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems[0].startswith(f"{path}: routing_strategy: ")


def test_the_shorthand_and_variants_do_not_mix() -> None:
    with pytest.raises(ValueError, match="routing_strategy: set these per variant"):
        EndpointSpec.model_validate(
            {
                "name": "e",
                "routing_strategy": "RANDOM",
                "variants": [{"name": "a", "containers": SPEC["containers"]}],
            }
        )
