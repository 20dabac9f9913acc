"""scikit-learn container defaults: ``model.joblib`` / ``model.pkl``, one estimator method.

Imported only when chosen (:mod:`containers.frameworks`): scikit-learn costs nothing elsewhere.
"""

from containers.sklearn.framework import MODEL_FILES, SklearnFramework

__all__ = ["MODEL_FILES", "SklearnFramework"]
