"""scikit-learn container defaults: ``model.joblib`` / ``model.pkl``, one estimator method.

Imported lazily by the framework registry, so importing scikit-learn here costs nothing elsewhere.
"""

from containers.sklearn.framework import MODEL_FILES, SklearnFramework

__all__ = ["MODEL_FILES", "SklearnFramework"]
