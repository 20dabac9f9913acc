"""Frameworks by name, imported only when chosen: a scikit-learn container never imports torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from containers.errors import FrameworkUnavailable

if TYPE_CHECKING:
    from containers.base import Framework
    from containers.settings import ContainerSettings

FRAMEWORKS: dict[str, str] = {
    "sklearn": "containers.sklearn:SklearnFramework",
    "pytorch": "containers.pytorch:PyTorchFramework",
    "tensorflow": "containers.tensorflow:TensorFlowFramework",
}
#: The pip extra that installs each framework's library.
EXTRAS = {"sklearn": "sklearn", "pytorch": "pytorch", "tensorflow": "tensorflow"}


def framework_class(name: str) -> type[Framework]:
    """Import the framework class registered as ``name``; precise errors when it can't be."""
    target = FRAMEWORKS.get(name)
    if target is None:
        raise FrameworkUnavailable(
            f"unknown framework {name!r}; choose one of {', '.join(sorted(FRAMEWORKS))}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "containers":
            raise  # a bug in Tandem, not a missing library
        missing = exc.name or str(exc)
        raise FrameworkUnavailable(
            f"framework {name!r} needs {missing!r}, which is not installed: "
            f"pip install 'tandem[{EXTRAS[name]}]'"
        ) from exc
    cls: type[Framework] = getattr(module, class_name)
    return cls


def create(name: str, settings: ContainerSettings) -> Framework:
    return framework_class(name).from_settings(settings)
