"""Every rule of the endpoint spec, checked through the files users write (``load_spec``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.spec import MAX_CONTAINERS, Execution, Framework, Mode, load_spec
from tests.pipelines.spec_files import SKLEARN, endpoint, one_problem, write

# ---- a valid spec and its defaults ---------------------------------------------------------------


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, endpoint()))
    assert spec.name == "ep"
    assert spec.execution is Execution.SERIAL
    assert spec.variant == "AllTraffic"
    assert spec.timeout == 60.0
    (container,) = spec.containers
    assert container.framework is Framework.SKLEARN
    assert container.mode is Mode.SINGLE_MODEL
    assert container.environment == {}
    assert spec.source == tmp_path.resolve()


def test_unnamed_serial_containers_are_numbered(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, endpoint(containers=[SKLEARN, SKLEARN, SKLEARN])))
    assert spec.hostnames == ["container-1", "container-2", "container-3"]


def test_named_containers_keep_their_names(tmp_path: Path) -> None:
    containers = [{**SKLEARN, "hostname": "pre"}, {**SKLEARN, "hostname": "post"}]
    spec = load_spec(write(tmp_path, endpoint(containers=containers)))
    assert spec.hostnames == ["pre", "post"]


# ---- endpoint name -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "churn", "A1", "my-endpoint", "a--b", "x" * 63])
def test_valid_names(tmp_path: Path, name: str) -> None:
    assert load_spec(write(tmp_path, endpoint(name=name))).name == name


@pytest.mark.parametrize("name", ["-a", "a-", "a_b", "a.b", "a b", "é", "x" * 64, ""])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    one_problem(tmp_path, endpoint(name=name), "name")


def test_name_is_required(tmp_path: Path) -> None:
    spec = endpoint()
    del spec["name"]
    one_problem(tmp_path, spec, "name", "required")


def test_variant_follows_the_name_rule(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(variant="bad_variant"), "variant")


@pytest.mark.parametrize("timeout", [0, -1, 3601, float("nan"), float("inf")])
def test_timeout_bounds(tmp_path: Path, timeout: float) -> None:
    one_problem(tmp_path, endpoint(timeout=timeout), "timeout")


@pytest.mark.parametrize("weight", [float("nan"), float("inf")])
def test_a_weight_is_a_finite_number(tmp_path: Path, weight: float) -> None:
    one_problem(tmp_path, endpoint(weight=weight), "weight", "finite")


def test_weights_that_add_up_past_any_number_are_refused(tmp_path: Path) -> None:
    variants = [{"name": v, "containers": [dict(SKLEARN)], "weight": 1e308} for v in "ab"]
    one_problem(tmp_path, {"name": "ep", "variants": variants}, "(top level)", "add up")


# ---- number of containers ------------------------------------------------------------------------


def test_fifteen_containers_is_the_limit(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, endpoint(containers=[SKLEARN] * MAX_CONTAINERS)))
    assert len(spec.containers) == 15
    one_problem(tmp_path, endpoint(containers=[SKLEARN] * 16), "containers", "15")


def test_at_least_one_container(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(containers=[]), "containers", "1")


# ---- hostnames -----------------------------------------------------------------------------------


def test_serial_hostnames_are_all_or_none(tmp_path: Path) -> None:
    containers = [{**SKLEARN, "hostname": "pre"}, SKLEARN]
    one_problem(tmp_path, endpoint(containers=containers), "(top level)", "all-or-none")


def test_direct_needs_every_hostname(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(execution="Direct"), "(top level)", "Direct", "hostname")


def test_direct_with_hostnames_is_valid(tmp_path: Path) -> None:
    containers = [{**SKLEARN, "hostname": "a"}, {"hostname": "b", "framework": "pytorch"}]
    spec = load_spec(write(tmp_path, endpoint(execution="Direct", containers=containers)))
    assert spec.execution is Execution.DIRECT
    assert spec.hostnames == ["a", "b"]


@pytest.mark.parametrize("execution", ["Serial", "Direct"])
def test_hostnames_are_unique(tmp_path: Path, execution: str) -> None:
    containers = [{**SKLEARN, "hostname": "same"}, {**SKLEARN, "hostname": "same"}]
    one_problem(
        tmp_path,
        endpoint(execution=execution, containers=containers),
        "(top level)",
        "unique",
        "same",
    )


@pytest.mark.parametrize("hostname", ["-x", "x_y", "x" * 64])
def test_hostname_follows_the_name_rule(tmp_path: Path, hostname: str) -> None:
    containers = [{**SKLEARN, "hostname": hostname}]
    one_problem(tmp_path, endpoint(containers=containers), "containers[0].hostname")


def test_unknown_execution(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(execution="Parallel"), "execution", "Serial", "Direct")


# ---- what a container runs -----------------------------------------------------------------------


def test_container_needs_something_to_run(tmp_path: Path) -> None:
    spec = endpoint(containers=[{"model_data": "./m"}])
    one_problem(tmp_path, spec, "containers[0]", "framework", "command", "image")


def test_framework_and_command_are_exclusive(tmp_path: Path) -> None:
    spec = endpoint(containers=[{**SKLEARN, "command": ["python", "serve.py"]}])
    one_problem(tmp_path, spec, "containers[0]", "exclusive")


def test_unknown_framework(tmp_path: Path) -> None:
    spec = endpoint(containers=[{"framework": "xgboost"}])
    one_problem(tmp_path, spec, "containers[0].framework", "sklearn", "pytorch", "tensorflow")


def test_command_must_not_be_empty(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(containers=[{"command": []}]), "containers[0].command")


def test_command_must_be_a_list(tmp_path: Path) -> None:
    spec = endpoint(containers=[{"command": "python serve.py"}])
    one_problem(tmp_path, spec, "containers[0].command", "list")


@pytest.mark.parametrize(
    "container",
    [
        {"framework": "tensorflow"},
        {"command": ["python", "my_server.py"]},
        {"image": "registry/my-image:1.0"},
        {"command": ["serve"], "image": "registry/my-image:1.0"},
        {"framework": "pytorch", "image": "registry/torch:1"},
    ],
)
def test_valid_ways_to_run_a_container(tmp_path: Path, container: dict[str, Any]) -> None:
    spec = load_spec(write(tmp_path, endpoint(containers=[container])))
    assert spec.containers[0].model_dump(exclude_defaults=True) == {
        key: (value if key != "framework" else Framework(value)) for key, value in container.items()
    }


# ---- MultiModel ----------------------------------------------------------------------------------


def test_multi_model_needs_model_data(tmp_path: Path) -> None:
    spec = endpoint(containers=[{"framework": "sklearn", "mode": "MultiModel"}])
    one_problem(tmp_path, spec, "containers[0]", "MultiModel", "model_data")


def test_unknown_mode(tmp_path: Path) -> None:
    spec = endpoint(containers=[{**SKLEARN, "mode": "ManyModels"}])
    one_problem(tmp_path, spec, "containers[0].mode", "SingleModel", "MultiModel")


def test_serial_chain_holds_at_most_one_multi_model(tmp_path: Path) -> None:
    multi = {**SKLEARN, "mode": "MultiModel"}
    spec = load_spec(write(tmp_path, endpoint(containers=[multi, SKLEARN])))
    assert [c.mode for c in spec.containers] == [Mode.MULTI_MODEL, Mode.SINGLE_MODEL]
    one_problem(
        tmp_path, endpoint(containers=[multi, multi]), "(top level)", "at most one", "MultiModel"
    )


def test_direct_may_hold_several_multi_model_containers(tmp_path: Path) -> None:
    containers = [{**SKLEARN, "mode": "MultiModel", "hostname": h} for h in ("a", "b")]
    spec = load_spec(write(tmp_path, endpoint(execution="Direct", containers=containers)))
    assert all(c.mode is Mode.MULTI_MODEL for c in spec.containers)


# ---- environment ---------------------------------------------------------------------------------


def test_environment_values_become_strings(tmp_path: Path) -> None:
    text = """
name: ep
containers:
  - framework: sklearn
    environment:
      PORT: 8080
      RATIO: 0.5
      ENABLED: true
      DISABLED: false
      NAME: plain
"""
    spec = load_spec(write(tmp_path, text))
    assert spec.containers[0].environment == {
        "PORT": "8080",
        "RATIO": "0.5",
        "ENABLED": "true",
        "DISABLED": "false",
        "NAME": "plain",
    }


def test_at_most_100_environment_entries(tmp_path: Path) -> None:
    ok = {f"K{i}": "v" for i in range(100)}
    spec = load_spec(write(tmp_path, endpoint(containers=[{**SKLEARN, "environment": ok}])))
    assert len(spec.containers[0].environment) == 100
    too_many = {f"K{i}": "v" for i in range(101)}
    one_problem(
        tmp_path,
        endpoint(containers=[{**SKLEARN, "environment": too_many}]),
        "containers[0].environment",
        "100",
        "101",
    )


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "", "K" * 1025])
def test_environment_key_rules(tmp_path: Path, key: str) -> None:
    spec = endpoint(containers=[{**SKLEARN, "environment": {key: "v"}}])
    one_problem(tmp_path, spec, "containers[0].environment", "must match")


def test_environment_key_of_1024_characters_is_fine(tmp_path: Path) -> None:
    key = "K" * 1024
    spec = load_spec(write(tmp_path, endpoint(containers=[{**SKLEARN, "environment": {key: "v"}}])))
    assert key in spec.containers[0].environment


def test_environment_value_length(tmp_path: Path) -> None:
    ok = endpoint(containers=[{**SKLEARN, "environment": {"K": "v" * 1024}}])
    assert load_spec(write(tmp_path, ok)).containers[0].environment["K"] == "v" * 1024
    too_long = endpoint(containers=[{**SKLEARN, "environment": {"K": "v" * 1025}}])
    one_problem(tmp_path, too_long, "containers[0].environment", "'K'", "1024")


def test_environment_values_must_be_scalars(tmp_path: Path) -> None:
    spec = endpoint(containers=[{**SKLEARN, "environment": {"K": [1, 2]}}])
    one_problem(tmp_path, spec, "containers[0].environment.K")
