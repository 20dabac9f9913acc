"""Spec files as files: bad YAML, unknown fields, ``model_data`` paths, several files at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.spec import EndpointSpec, SpecError, load_spec, load_specs
from tests.pipelines.spec_files import SKLEARN, endpoint, one_problem, problems, write

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
