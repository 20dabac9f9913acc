"""TensorFlow container defaults: a SavedModel or Keras file behind TF Serving's REST format.

Imported lazily by :mod:`containers.frameworks`. TF's C++ logging is quieted before TF loads.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from containers.tensorflow.framework import TensorFlowFramework
from containers.tensorflow.serving import TFRequest, TFResponse

__all__ = ["TFRequest", "TFResponse", "TensorFlowFramework"]
