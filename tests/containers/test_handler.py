"""The handler contract in-process: user functions, defaults, context, contract errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from containers import codecs
from containers.errors import BadInput, ModelLoadError, UnsupportedAccept, UserCodeError
from containers.handler import Context, ModelHandler
from containers.sklearn import SklearnFramework
from tests.containers.sklearn_models import (
    csv_body,
    package,
    raw_rows,
    synthetic,
    train_classifier,
    train_preprocessor,
)

pytestmark = pytest.mark.sklearn


def run(handler: ModelHandler, body: bytes, content_type: str, accept: str | None = None) -> tuple:
    model = handler.load()
    media = handler.resolve_content_type(content_type)
    chosen = handler.resolve_accept(accept)
    context = handler.context({"x-amzn-sagemaker-custom-attributes": "trace=1"})
    return (*handler.invoke(model, body, media, chosen, context), context)


def test_defaults_predict_like_the_model(tmp_path: Path) -> None:
    model = train_classifier()
    handler = ModelHandler(SklearnFramework(), package(tmp_path, model))
    x = synthetic(4, seed=1)
    body, content_type, _ = run(handler, csv_body(x), "text/csv")
    assert content_type == codecs.JSON
    assert json.loads(body) == model.predict(x).tolist()


def test_predict_proba_method_and_instances_wrapper(tmp_path: Path) -> None:
    model = train_classifier()
    handler = ModelHandler(SklearnFramework("predict_proba"), package(tmp_path, model))
    x = synthetic(3, seed=2)
    body, _, _ = run(handler, json.dumps({"instances": x.tolist()}).encode(), "application/json")
    np.testing.assert_allclose(json.loads(body), model.predict_proba(x))


def test_preprocessor_turns_raw_rows_into_csv_features(tmp_path: Path) -> None:
    pre = train_preprocessor()
    handler = ModelHandler(
        SklearnFramework("transform"), package(tmp_path, pre), default_accept=codecs.CSV
    )
    rows = raw_rows(5, seed=3)
    body, content_type, _ = run(handler, csv_body(rows), "text/csv; charset=utf-8")
    assert content_type == codecs.CSV
    features = codecs.decode(body, content_type)
    assert features.dtype == np.float64
    np.testing.assert_allclose(features, pre.transform(rows))


USER_CODE = """
import json
import numpy as np
from helper import SCALE

def model_fn(model_dir, context):
    import joblib
    return {"model": joblib.load(model_dir + "/model.joblib"), "dir": context.model_dir}

def input_fn(body, content_type, context):
    return np.asarray(json.loads(body)["rows"]) * SCALE

def predict_fn(data, model):
    return model["model"].predict(data)

def output_fn(prediction, accept, context):
    context.response_headers["X-Amzn-SageMaker-Custom-Attributes"] = context.custom_attributes
    return json.dumps({"labels": prediction.tolist()}), "application/vnd.labels+json"
"""


def test_user_functions_with_and_without_context(tmp_path: Path) -> None:
    model = train_classifier()
    model_dir = package(tmp_path, model, USER_CODE, extra_code={"helper.py": "SCALE = 1.0\n"})
    handler = ModelHandler(SklearnFramework(), model_dir)
    assert handler.content_types is None and handler.accepts is None
    x = synthetic(2, seed=4)
    body, content_type, context = run(
        handler, json.dumps({"rows": x.tolist()}).encode(), "application/vnd.rows+json", "x/y"
    )
    assert content_type == "application/vnd.labels+json"
    assert json.loads(body) == {"labels": model.predict(x).tolist()}
    assert context.response_headers == {"X-Amzn-SageMaker-Custom-Attributes": "trace=1"}


def test_transform_fn_gets_everything(tmp_path: Path) -> None:
    code = """
def transform_fn(model, body, content_type, accept, context):
    return f"{type(model).__name__} {body.decode()} {content_type} {accept} {context.model_name}"
"""
    handler = ModelHandler(
        SklearnFramework(), package(tmp_path, train_classifier(), code), name="m"
    )
    body, content_type, _ = run(handler, b"hi", "text/plain", "text/csv")
    assert body == b"LogisticRegression hi text/plain text/csv m"
    assert content_type == "text/csv"


def test_transform_fn_with_predict_fn_is_a_load_error(tmp_path: Path) -> None:
    code = """
def transform_fn(model, body, content_type, accept):
    return body
def predict_fn(data, model):
    return data
"""
    with pytest.raises(ModelLoadError, match="transform_fn and predict_fn"):
        ModelHandler(SklearnFramework(), package(tmp_path, train_classifier(), code))


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("def input_fn(body):\n    return body\n", "input_fn must take 2 arguments"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
        ("predict_fn = 3\n", "not a function"),
    ],
)
def test_broken_user_modules_are_load_errors(tmp_path: Path, code: str, fragment: str) -> None:
    with pytest.raises(ModelLoadError, match=fragment):
        ModelHandler(SklearnFramework(), package(tmp_path, train_classifier(), code))


def test_missing_explicit_program_and_missing_artifact(tmp_path: Path) -> None:
    model_dir = package(tmp_path, train_classifier())
    with pytest.raises(ModelLoadError, match=r"serve\.py"):
        ModelHandler(SklearnFramework(), model_dir, program="serve.py")
    with pytest.raises(ModelLoadError, match="not a path"):
        ModelHandler(SklearnFramework(), model_dir, program="../../evil.py")
    (model_dir / "model.joblib").unlink()
    with pytest.raises(ModelLoadError, match=r"model\.joblib or model\.pkl"):
        ModelHandler(SklearnFramework(), model_dir).load()


def test_user_exception_names_the_function(tmp_path: Path) -> None:
    code = "def predict_fn(data, model):\n    raise RuntimeError('boom')\n"
    handler = ModelHandler(SklearnFramework(), package(tmp_path, train_classifier(), code))
    with pytest.raises(UserCodeError, match="predict_fn raised RuntimeError: boom"):
        run(handler, csv_body(synthetic(1)), "text/csv")


def test_bad_shapes_and_accepts(tmp_path: Path) -> None:
    handler = ModelHandler(SklearnFramework(), package(tmp_path, train_classifier()))
    with pytest.raises(BadInput, match="expecting 20 features"):
        run(handler, b"1,2,3\n", "text/csv")
    with pytest.raises(UnsupportedAccept, match="image/png"):
        handler.resolve_accept("image/png")


def test_context_properties() -> None:
    context = Context("m", "/opt/ml/model", {"x-amzn-sagemaker-custom-attributes": "a=b"})
    assert context.custom_attributes == "a=b"
    assert context.system_properties["model_dir"] == "/opt/ml/model"
