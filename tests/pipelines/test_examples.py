"""The example pipelines: the build script writes loadable artifacts and both specs validate."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.examples import (
    EXAMPLES_DIR,
    MODELS_DIR,
    SPECS,
    build,
    churn,
    reference,
    tenants,
    zoo,
)
from pipelines.spec import Execution, Framework, Mode, load_specs
from tests.support import PYTHON, ROOT

pytestmark = [pytest.mark.sklearn, pytest.mark.pytorch, pytest.mark.tensorflow]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both examples built once, through the command line, into a scratch folder."""
    out = tmp_path_factory.mktemp("models")
    result = subprocess.run(
        [PYTHON, "-m", "pipelines.examples.build", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "churn: built" in result.stdout and "zoo: built" in result.stdout, result.stdout
    return out


def members(tarball: Path) -> list[str]:
    with tarfile.open(tarball, "r:gz") as tar:
        for info in tar.getmembers():
            assert not info.name.startswith(("/", "..")), info.name
            assert info.isfile() or info.isdir(), f"{info.name} is a link or device"
        return tar.getnames()


# ---- the specs -----------------------------------------------------------------------------------


def test_both_specs_validate() -> None:
    churn_spec, zoo_spec = load_specs([SPECS["churn"], SPECS["zoo"]])
    assert churn_spec.name == "churn" and churn_spec.execution is Execution.SERIAL
    assert churn_spec.hostnames == ["preprocess", "classifier"]
    assert [c.framework for c in churn_spec.containers] == [Framework.SKLEARN, Framework.TENSORFLOW]
    preprocess_env = churn_spec.containers[0].environment
    assert preprocess_env["TANDEM_SKLEARN_METHOD"] == "transform"
    assert preprocess_env["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] == "text/csv"

    assert zoo_spec.name == "zoo" and zoo_spec.execution is Execution.DIRECT
    assert zoo_spec.hostnames == ["sklearn", "pytorch", "tensorflow"]
    assert [c.framework for c in zoo_spec.containers] == [
        Framework.SKLEARN,
        Framework.PYTORCH,
        Framework.TENSORFLOW,
    ]


def test_specs_point_at_what_the_build_writes() -> None:
    artifacts = {"churn": churn.ARTIFACTS, "zoo": zoo.ARTIFACTS}
    for spec in load_specs(SPECS.values()):
        assert spec.source == EXAMPLES_DIR
        assert all(not Path(c.model_data or "/").is_absolute() for c in spec.containers)
        urls = [spec.model_data_url(c) for c in spec.containers]
        if spec.name == "tenants":  # a MultiModel prefix: the folder the build fills
            assert urls == [str(MODELS_DIR / "tenants")]
        else:
            assert urls == [str(MODELS_DIR / spec.name / name) for name in artifacts[spec.name]]


def test_tenants_is_one_multimodel_container_on_two_instances() -> None:
    (spec,) = load_specs([SPECS["tenants"]])
    (variant,) = spec.production_variants
    assert variant.instance_count == 2
    assert [c.mode for c in spec.containers] == [Mode.MULTI_MODEL]
    assert len(tenants.ARTIFACTS) == tenants.CUSTOMERS >= 20


# ---- the artifacts -------------------------------------------------------------------------------


@pytest.mark.slow  # builds both examples (about 20 s)
def test_artifacts_have_the_sagemaker_layout(models: Path) -> None:
    assert members(models / "churn" / "preprocess.tar.gz") == ["model.joblib"]
    classifier = members(models / "churn" / "classifier.tar.gz")
    assert "1/saved_model.pb" in classifier
    assert members(models / "zoo" / "sklearn.tar.gz") == ["model.joblib"]
    assert members(models / "zoo" / "pytorch.tar.gz") == ["model.pt"]
    assert "1/saved_model.pb" in members(models / "zoo" / "tensorflow.tar.gz")
    for name in tenants.ARTIFACTS:
        assert members(models / "tenants" / name) == ["model.joblib"]
    leftovers = [
        p.name for p in models.rglob("*") if p.name.startswith(".") and "stamp" not in p.name
    ]
    assert leftovers == [], "no temporary files are left behind"


@pytest.mark.slow  # builds both examples (about 20 s)
def test_churn_artifacts_load_and_predict(models: Path, tmp_path: Path) -> None:
    rows, churned = churn.raw_rows(400, seed=123)  # customers the model has not seen
    features = reference.churn_features(rows, tmp_path, models)
    assert features.shape == (400, len(churn.STATES) + len(churn.AREA_CODES) + 2 * 2 + 6)
    probabilities = reference.churn_probabilities(rows, tmp_path, models)
    assert probabilities.shape == (400, 1)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    # It learned something: churners get higher probabilities than the others, on average.
    p = probabilities.ravel()
    assert p[churned == 1].mean() > p[churned == 0].mean() + 0.1


@pytest.mark.slow  # builds both examples (about 20 s)
def test_churn_preprocess_ignores_unknown_categories(models: Path, tmp_path: Path) -> None:
    rows, _ = churn.raw_rows(2, seed=5)
    rows[0][0] = "ZZ"  # a state never seen in training
    features = reference.churn_features(rows, tmp_path, models)
    assert np.all(features[0, : len(churn.STATES)] == 0)
    assert features[1, : len(churn.STATES)].sum() == 1


@pytest.mark.slow  # builds both examples (about 20 s)
@pytest.mark.parametrize("hostname", ["sklearn", "pytorch", "tensorflow"])
def test_zoo_artifacts_load_and_predict(models: Path, tmp_path: Path, hostname: str) -> None:
    x, y = zoo.dataset(300, seed=321)
    answers = reference.zoo_predictions(hostname, x, tmp_path, models)
    assert answers.shape == ((300, 2) if hostname == "sklearn" else (300, 1))
    accuracy = float(((answers[:, -1] > 0.5) == y).mean())
    assert accuracy > 0.8, f"{hostname} accuracy {accuracy:.2f}"


# ---- build-if-missing ----------------------------------------------------------------------------


@pytest.mark.slow  # builds both examples (about 20 s)
def test_up_to_date_examples_are_not_rebuilt(models: Path) -> None:
    lines: list[str] = []
    before = {p: p.stat().st_mtime_ns for p in models.rglob("*.tar.gz")}
    paths = build.ensure_built(out=models, log=lines.append)
    assert lines == [
        f"churn: up to date in {models / 'churn'}",
        f"zoo: up to date in {models / 'zoo'}",
        f"tenants: up to date in {models / 'tenants'}",
    ]
    assert {p: p.stat().st_mtime_ns for p in models.rglob("*.tar.gz")} == before
    assert paths["zoo"] == [models / "zoo" / name for name in zoo.ARTIFACTS]


@pytest.mark.slow  # builds both examples (about 20 s)
def test_missing_or_stale_artifacts_mean_not_built(models: Path, tmp_path: Path) -> None:
    assert build.is_built("churn", models) and build.is_built("zoo", models)
    assert not build.is_built("churn", tmp_path)
    copy = tmp_path / "churn"
    copy.mkdir()
    for path in (models / "churn").iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    assert build.is_built("churn", tmp_path)
    (copy / ".build-stamp").write_text("an older recipe\n")
    assert not build.is_built("churn", tmp_path)
    (copy / ".build-stamp").write_bytes((models / "churn" / ".build-stamp").read_bytes())
    (copy / "classifier.tar.gz").unlink()
    assert not build.is_built("churn", tmp_path)


def test_unknown_example_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "pipelines.examples.build", "--out", str(tmp_path), "churn", "iris"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown example(s): iris" in result.stderr
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown example"):
        build.ensure_built(["iris"], tmp_path)


# ---- the synthetic data --------------------------------------------------------------------------


def test_churn_rows_are_raw_csv_with_categorical_columns() -> None:
    rows, churned = churn.raw_rows(50)
    assert rows == churn.raw_rows(50)[0], "seeded: the same rows every time"
    assert all(len(row) == len(churn.COLUMNS) for row in rows)
    assert {row[0] for row in rows} <= set(churn.STATES)
    assert {row[3] for row in rows} <= {"yes", "no"}
    assert set(churned.tolist()) <= {0, 1}
    text = churn.to_csv(rows[:2])
    assert text.count("\n") == 2 and text.split("\n")[0] == ",".join(rows[0])
