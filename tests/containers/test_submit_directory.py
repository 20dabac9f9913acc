"""SAGEMAKER_SUBMIT_DIRECTORY and SAGEMAKER_PROGRAM as SageMaker's framework containers read them.

The user's code may live apart from the model (the SDK's ``sourcedir.tar.gz``, fetched by the
gateway into a folder): a program named there must exist and import, or the model does not load;
the framework's defaults never answer in its place. ``requirements.txt`` is checked (a shared
Python installs nothing) or installed (an image of its own).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from containers.errors import ModelLoadError
from containers.handler import ModelHandler
from containers.settings import ContainerSettings
from containers.sklearn import SklearnFramework
from tests.containers.sklearn_models import csv_body, package, synthetic, train_classifier

pytestmark = pytest.mark.sklearn

#: Answers something the default predict_fn never would: proof the user's code ran.
ENTRY = "def predict_fn(data, model):\n    return [[-1.0, float(len(data))]]\n"


def code_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "submitted"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def answer(handler: ModelHandler, rows: int = 3) -> object:
    model = handler.load()
    body, _ = handler.invoke(
        model, csv_body(synthetic(rows)), "text/csv", "application/json", handler.context()
    )
    return json.loads(body)


def test_the_program_in_the_submit_directory_answers(tmp_path: Path) -> None:
    model_dir = package(tmp_path, train_classifier())  # a training job's archive: no code/
    code = code_folder(
        tmp_path,
        {
            "serve_entry.py": "from submitted_helper import ENTRY\n" + ENTRY,
            "submitted_helper.py": "ENTRY = 1\n",
        },
    )
    handler = ModelHandler(SklearnFramework(), model_dir, program="serve_entry.py", code_dir=code)
    assert answer(handler) == [[-1.0, 3.0]]


def test_a_module_name_is_taken_for_its_file(tmp_path: Path) -> None:
    model_dir = package(tmp_path, train_classifier())
    code = code_folder(tmp_path, {"entry.py": ENTRY})
    handler = ModelHandler(SklearnFramework(), model_dir, program="entry", code_dir=code)
    assert answer(handler, rows=2) == [[-1.0, 2.0]]


def test_an_inference_py_that_is_not_there_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    # The silent case: the default program's name, code given apart, and no such file in it.
    model_dir = package(tmp_path, train_classifier())
    code = code_folder(tmp_path, {"other.py": ENTRY})
    with pytest.raises(ModelLoadError, match=r"'inference\.py' cannot be found: .* other\.py"):
        ModelHandler(SklearnFramework(), model_dir, program="inference.py", code_dir=code)
    # Named explicitly with the code in model.tar.gz's code/: the same rule.
    with pytest.raises(ModelLoadError, match=r"'inference\.py' cannot be found: there is no code"):
        ModelHandler(SklearnFramework(), model_dir, program="inference.py")
    # Nothing named, nothing given: the framework's defaults serve, as before.
    assert ModelHandler(SklearnFramework(), model_dir).module is None


@pytest.mark.parametrize("program", ["code/inference.py", "../inference.py", "..", "a\\b.py"])
def test_a_program_with_a_path_is_refused(tmp_path: Path, program: str) -> None:
    model_dir = package(tmp_path, train_classifier(), code=ENTRY)
    with pytest.raises(ModelLoadError, match=r"SAGEMAKER_PROGRAM=.* must be a file name"):
        ModelHandler(SklearnFramework(), model_dir, program=program)


def test_a_program_that_does_not_import_says_so(tmp_path: Path) -> None:
    model_dir = package(tmp_path, train_classifier())
    code = code_folder(tmp_path, {"inference.py": "import not_a_module_anywhere\n"})
    with pytest.raises(ModelLoadError, match=r"'inference\.py' cannot be imported: ModuleNotFound"):
        ModelHandler(SklearnFramework(), model_dir, code_dir=code)


def test_requirements_are_checked_where_nothing_may_be_installed(tmp_path: Path) -> None:
    model_dir = package(tmp_path, train_classifier())
    met = code_folder(tmp_path, {"inference.py": ENTRY, "requirements.txt": "numpy\n# note\n"})
    assert answer(ModelHandler(SklearnFramework(), model_dir, code_dir=met)) == [[-1.0, 3.0]]
    (met / "requirements.txt").write_text("numpy<1\nno-such-package-tandem==1.0\n")
    other = tmp_path / "other"
    met.rename(other)
    with pytest.raises(ModelLoadError, match=r"numpy<1 \(found .*\), no-such-package-tandem==1"):
        ModelHandler(SklearnFramework(), model_dir, code_dir=other)


def test_submit_directory_settings(tmp_path: Path) -> None:
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": f"file://{tmp_path}/code"}
    assert ContainerSettings(**env).code_dir == tmp_path / "code"  # type: ignore[arg-type]
    assert ContainerSettings().code_dir is None
    remote_env = {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/sourcedir.tar.gz"}
    remote = ContainerSettings(**remote_env)  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError, match="not a local folder"):
        _ = remote.code_dir
