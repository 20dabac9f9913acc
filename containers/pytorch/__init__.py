"""PyTorch container defaults: a TorchScript ``model.pt`` served on CPU.

Imported only when chosen (:mod:`containers.frameworks`): torch costs nothing elsewhere.
"""

from containers.pytorch.framework import EXPORTED_FILE, MODEL_FILE, PyTorchFramework

__all__ = ["EXPORTED_FILE", "MODEL_FILE", "PyTorchFramework"]
