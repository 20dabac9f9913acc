"""The state folder's layout: no name of one kind reaches another kind's folder, and an older
flat layout moves into it once, on a real folder tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.batch.jobs import JOBS_FOLDER
from gateway.folders import (
    LAYOUT_FILE,
    container_dir,
    endpoint_dir,
    migrate,
    prune_endpoints,
    remove_endpoint,
)
from gateway.live import deployment_name
from pipelines.spec import EndpointSpec

STATE = Path("/state")
#: SageMaker's name pattern (endpoints, variants, jobs, hostnames): ^[a-zA-Z0-9](-*[a-zA-Z0-9])*
NAMES = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,6}", fullmatch=True)


@dataclass(frozen=True)
class Box:
    endpoint: str
    deployment: str
    hostname: str


def instance_dirs(endpoint: str, variants: list[str], hostname: str) -> set[Path]:
    """Every container folder an endpoint of ``variants`` may use (both blue/green sides)."""
    spec = EndpointSpec.model_validate(
        {
            "name": endpoint,
            "variants": [{"name": v, "containers": [{"command": ["x"]}]} for v in variants],
        }
    )
    found = set()
    for folder in (endpoint, f"{endpoint}.1"):
        for variant in variants:
            for i in range(3):
                deployment = deployment_name(folder, spec, variant, i)
                found.add(container_dir(STATE, Box(endpoint, deployment, hostname)))
    return found


def overlap(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


@settings(max_examples=100, deadline=None)
@given(
    first=NAMES,
    second=NAMES,
    variants=st.lists(NAMES, min_size=1, max_size=3, unique=True),
    hostname=NAMES,
    job=NAMES,
)
def test_no_name_reaches_another_objects_folder(
    first: str, second: str, variants: list[str], hostname: str, job: str
) -> None:
    mine = instance_dirs(first, variants, hostname)
    jobs_root = STATE / JOBS_FOLDER
    job_dir = endpoint_dir(jobs_root, job)
    assert not any(overlap(d, job_dir) for d in mine), "a job never meets an endpoint"
    assert not any(overlap(d, STATE / "control.db") for d in mine)
    if first.lower() != second.lower():
        theirs = instance_dirs(second, variants, hostname)
        assert not any(overlap(a, b) for a in mine for b in theirs)
        assert not overlap(endpoint_dir(STATE, first), endpoint_dir(STATE, second))
    assert all(d.is_relative_to(endpoint_dir(STATE, first)) for d in mine)


def container(folder: Path, *files: str) -> None:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(name)


def test_an_older_layout_moves_once_and_nothing_else_is_touched(tmp_path: Path) -> None:
    state = tmp_path / "state"
    container(state / "churn" / "preprocess", "container.log", "model.stamp")
    container(state / "churn.1" / "preprocess", "container.log")
    container(state / "ab_A_0" / "container-1", "container.log")
    container(state / "jobs" / "nightly" / "toy", "container.log")
    (state / "notes").mkdir()
    (state / "notes" / "mine.txt").write_text("keep")
    (state / "control.db").write_bytes(b"db")

    moved = migrate(state)

    assert sorted(moved) == ["ab_A_0", "churn", "churn.1", "jobs/nightly"]
    assert (state / "endpoints" / "churn" / "churn" / "preprocess" / "model.stamp").exists()
    assert (state / "endpoints" / "churn" / "churn.1" / "preprocess" / "container.log").exists()
    assert (state / "endpoints" / "ab" / "ab_A_0" / "container-1" / "container.log").exists()
    assert (state / "jobs" / "endpoints" / "nightly" / "nightly" / "toy").is_dir()
    assert (state / "notes" / "mine.txt").read_text() == "keep"
    assert (state / "control.db").read_bytes() == b"db"
    assert (state / LAYOUT_FILE).read_text() == "2"
    container(state / "later" / "x", "container.log")
    assert migrate(state) == [], "once: a marked folder is left alone"
    assert (state / "later" / "x").is_dir()


def test_removing_an_endpoint_takes_its_folder_only(tmp_path: Path) -> None:
    for name in ("a", "a-b", "Kept", "gone"):
        container(container_dir(tmp_path, Box(name, name, "c")), "container.log")
    remove_endpoint(tmp_path, "a")
    assert not endpoint_dir(tmp_path, "a").exists()
    assert container_dir(tmp_path, Box("a-b", "a-b", "c")).is_dir()
    assert prune_endpoints(tmp_path, {"a-b", "kept"}) == ["gone"]
    assert sorted(p.name for p in (tmp_path / "endpoints").iterdir()) == ["Kept", "a-b"]
