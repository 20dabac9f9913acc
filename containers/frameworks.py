"""What a framework is (the base class every framework container implements), and which exist.

A framework knows how to load an artifact from a model dir, how to predict, how to free a model, and
how bodies of each content type turn into its native input (and back). The handler contract
(``containers.handler``) lets a user's ``code/inference.py`` replace any of these per model.
Frameworks are found by name and imported only when chosen: a scikit-learn container never imports
torch.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from containers import codecs, resources
from containers.errors import FrameworkUnavailable

if TYPE_CHECKING:
    from typing import Self

    from containers.settings import ContainerSettings

FRAMEWORKS: dict[str, str] = {
    "sklearn": "containers.sklearn:SklearnFramework",
    "pytorch": "containers.pytorch:PyTorchFramework",
    "tensorflow": "containers.tensorflow:TensorFlowFramework",
}
#: The pip extra that installs each framework's library.
EXTRAS = {"sklearn": "sklearn", "pytorch": "pytorch", "tensorflow": "tensorflow"}


class ModelFramework(ABC):
    """Defaults for one framework; one instance per container process, shared by all its models."""

    name: ClassVar[str]
    #: Content types ``input_fn`` understands (media types without parameters).
    content_types: ClassVar[tuple[str, ...]] = codecs.ARRAY_TYPES
    #: Media types ``output_fn`` can produce.
    accepts: ClassVar[tuple[str, ...]] = codecs.ARRAY_TYPES
    #: Each thread that predicts starts its own intra-op team (OpenMP): the default team size is
    #: then shared out between the predicting threads instead of given whole to each.
    intra_op_per_thread: ClassVar[bool] = False

    @classmethod
    def from_settings(cls, settings: ContainerSettings) -> Self:
        """Build the framework from the container's settings (most frameworks take none)."""
        return cls()

    def thread_counts(self, settings: ContainerSettings, predictors: int) -> tuple[int, int]:
        """Intra-/inter-op pool sizes for one process whose ``predictors`` threads predict."""
        return resources.thread_counts(
            settings.intra_op_threads,
            settings.inter_op_threads,
            settings.workers,
            callers=predictors if self.intra_op_per_thread else 1,
        )

    def configure_threads(self, intra_op: int, inter_op: int) -> None:  # noqa: B027 - optional hook
        """Size the framework's thread pools once per process, before any model loads."""

    def thread_initializer(self) -> None:  # noqa: B027 - optional hook
        """Run once in every worker thread before it loads or predicts (per-thread limits)."""

    @abstractmethod
    def load(self, model_dir: Path) -> Any:
        """Default ``model_fn``: load the artifact found in ``model_dir``."""

    @abstractmethod
    def predict(self, data: Any, model: Any) -> Any:
        """Default ``predict_fn``."""

    def unload(self, model: Any) -> None:  # noqa: B027 - most frameworks need nothing
        """Free what ``load`` took beyond what garbage collection reclaims."""

    def input_fn(self, body: bytes, content_type: str) -> Any:
        """Default ``input_fn``: decode ``body`` (``content_type`` is a bare media type)."""
        return codecs.decode(body, content_type)

    def output_fn(self, prediction: Any, accept: str) -> bytes:
        """Default ``output_fn``: encode ``prediction`` as ``accept`` (a bare media type)."""
        return codecs.encode(prediction, accept)


def framework_class(name: str) -> type[ModelFramework]:
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
    cls: type[ModelFramework] = getattr(module, class_name)
    return cls


def create(name: str, settings: ContainerSettings) -> ModelFramework:
    return framework_class(name).from_settings(settings)
