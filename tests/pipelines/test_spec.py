"""Every rule of the endpoint spec, checked through the files users write (``load_spec``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.spec import (
    MAX_CONTAINERS,
    EndpointSpec,
    Execution,
    Framework,
    Mode,
    SpecError,
    load_spec,
    load_specs,
)

SKLEARN = {"framework": "sklearn", "model_data": "./model"}


def write(folder: Path, spec: Any, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec), encoding="utf-8")
    return path


def endpoint(**fields: Any) -> dict[str, Any]:
    return {"name": "ep", "containers": [dict(SKLEARN)], **fields}


def problems(folder: Path, spec: Any) -> list[str]:
    path = write(folder, spec)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value), "every problem names the file"
    return info.value.problems


def one_problem(folder: Path, spec: Any, field: str, *words: str) -> str:
    """Exactly one problem, naming the file, the field and the rule (``words``)."""
    found = problems(folder, spec)
    assert len(found) == 1, found
    path = str(folder / "spec.yaml")
    assert found[0].startswith(f"{path}: {field}: "), found[0]
    for word in words:
        assert word in found[0], (word, found[0])
    return found[0]


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


@pytest.mark.parametrize("timeout", [0, -1, 3601])
def test_timeout_bounds(tmp_path: Path, timeout: float) -> None:
    one_problem(tmp_path, endpoint(timeout=timeout), "timeout")


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


# ---- unknown fields and malformed files ----------------------------------------------------------


def test_unknown_top_level_field(tmp_path: Path) -> None:
    one_problem(tmp_path, endpoint(replicas=3), "replicas", "not permitted")


def test_unknown_container_field(tmp_path: Path) -> None:
    spec = endpoint(containers=[{**SKLEARN, "modelData": "./m"}])
    one_problem(tmp_path, spec, "containers[0].modelData", "not permitted")


def test_source_cannot_be_set_from_the_file(tmp_path: Path) -> None:
    # ``source`` is filled in by the loader; a file that sets it must not move model_data lookups.
    spec = load_spec(write(tmp_path, endpoint(source="/elsewhere")))
    assert spec.source == tmp_path.resolve()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec = {
        "name": "bad_name",
        "execution": "Sideways",
        "containers": [{"framework": "nope"}, {"hostname": "x_y", "framework": "sklearn"}],
        "extra": 1,
    }
    found = problems(tmp_path, spec)
    fields = {p.split(": ")[1] for p in found}
    assert {
        "name",
        "execution",
        "containers[0].framework",
        "containers[1].hostname",
        "extra",
    } <= fields


def test_invalid_yaml(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: ep\ncontainers: [\n")
    assert len(found) == 1
    assert "not valid YAML" in found[0]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    one_problem(tmp_path, text, "(top level)", "mapping")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: cannot read")


def test_error_message_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, {"name": "-", "containers": []})
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith("invalid endpoint spec:")
    assert f"{path}: name:" in message
    assert f"{path}: containers:" in message


# ---- model_data resolution -----------------------------------------------------------------------


def test_relative_model_data_resolves_against_the_spec_folder(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    containers = [
        {"framework": "sklearn", "model_data": "./models/pre.tar.gz"},
        {"framework": "sklearn", "model_data": "../shared/model/"},
        {"framework": "sklearn", "model_data": "plain"},
    ]
    spec = load_spec(write(folder, endpoint(containers=containers)))
    urls = [spec.model_data_url(c) for c in spec.containers]
    assert urls == [
        str((folder / "models/pre.tar.gz").resolve()),
        str((tmp_path / "shared/model").resolve()),
        str((folder / "plain").resolve()),
    ]


def test_model_data_resolution_does_not_depend_on_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, endpoint())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(Path("..") / path.name)
    assert spec.model_data_url(spec.containers[0]) == str((tmp_path / "model").resolve())


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/prefix/model.tar.gz",
        "file:///srv/models/m.tar.gz",
        "https://host/m.tar.gz",
        "gs://bucket/m/",
    ],
)
def test_urls_are_kept_as_they_are(tmp_path: Path, url: str) -> None:
    spec = load_spec(
        write(tmp_path, endpoint(containers=[{"framework": "sklearn", "model_data": url}]))
    )
    assert spec.model_data_url(spec.containers[0]) == url


def test_absolute_and_home_paths(tmp_path: Path) -> None:
    absolute = str(tmp_path / "abs" / "model")
    containers = [
        {"framework": "sklearn", "model_data": absolute},
        {"framework": "sklearn", "model_data": "~/models/m"},
        {"framework": "sklearn"},
    ]
    spec = load_spec(write(tmp_path, endpoint(containers=containers)))
    urls = [spec.model_data_url(c) for c in spec.containers]
    assert urls[0] == absolute
    assert urls[1] == str((Path.home() / "models/m").resolve())
    assert urls[2] is None


def test_spec_built_in_code_resolves_against_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = EndpointSpec.model_validate(endpoint())
    assert spec.source is None
    assert spec.model_data_url(spec.containers[0]) == str((tmp_path / "model").resolve())


# ---- several files -------------------------------------------------------------------------------


def test_load_specs_keeps_order(tmp_path: Path) -> None:
    paths = [write(tmp_path, endpoint(name=n), f"{n}.yaml") for n in ("b", "a", "c")]
    assert [s.name for s in load_specs(paths)] == ["b", "a", "c"]


def test_load_specs_rejects_duplicate_names(tmp_path: Path) -> None:
    first = write(tmp_path, endpoint(name="same"), "one.yaml")
    second = write(tmp_path, endpoint(name="same"), "two.yaml")
    with pytest.raises(SpecError) as info:
        load_specs([first, second])
    (problem,) = info.value.problems
    assert problem.startswith(f"{second}: name: ")
    assert "'same'" in problem and str(first) in problem


def test_load_specs_reports_every_file(tmp_path: Path) -> None:
    good = write(tmp_path, endpoint(name="good"), "good.yaml")
    bad1 = write(tmp_path, endpoint(name="-bad"), "bad1.yaml")
    bad2 = write(tmp_path, "containers: [", "bad2.yaml")
    with pytest.raises(SpecError) as info:
        load_specs([good, bad1, bad2])
    found = info.value.problems
    assert any(p.startswith(f"{bad1}: name:") for p in found)
    assert any(p.startswith(f"{bad2}: not valid YAML") for p in found)
    assert not any(p.startswith(f"{good}:") for p in found)


def test_load_specs_of_nothing_is_empty() -> None:
    assert load_specs([]) == []
