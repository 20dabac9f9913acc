"""The scikit-learn loader in-process: an uncompressed ``model.joblib`` is mapped copy-on-write,
a compressed one read as before, both without a warning and both predicting."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib
from sklearn.linear_model import LinearRegression

from containers.sklearn import SklearnFramework

pytestmark = pytest.mark.sklearn


def trained() -> LinearRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    return LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5]))


@pytest.mark.parametrize("compress", [0, 3])
def test_a_joblib_model_loads_writable_and_without_warnings(tmp_path: Path, compress: int) -> None:
    joblib.dump(trained(), tmp_path / "model.joblib", compress=compress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # joblib warns when asked to map a compressed file
        model = SklearnFramework().load(tmp_path)
    mapped = isinstance(model.coef_, np.memmap)
    assert mapped is (compress == 0)  # uncompressed: the file's pages, not a fresh copy
    assert model.predict(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(1.0, abs=1e-6)
    assert model.coef_.flags.writeable  # copy-on-write: a model may still change its arrays,
    model.coef_[0] = 7.0
    assert joblib.load(tmp_path / "model.joblib").coef_[0] == pytest.approx(1.0)  # not the file
