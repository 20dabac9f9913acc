"""The handler contract: a user's ``code/<SAGEMAKER_PROGRAM>`` + framework defaults -> one pipeline.

The code is ``<model dir>/code/``, or the folder ``SAGEMAKER_SUBMIT_DIRECTORY`` names (where the
gateway put what SageMaker's SDK uploaded as ``sourcedir.tar.gz``).

The user module may define ``model_fn(model_dir)``, ``input_fn(body, content_type)``,
``predict_fn(data, model)``, ``output_fn(prediction, accept)`` or ``transform_fn(model, body,
content_type, accept)`` (which replaces the other three); each may take one more argument, a
:class:`Context`. What the module leaves out, the framework's defaults fill in. Exceptions from
these functions become :class:`UserCodeError` naming the function; the trace goes to the log only.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from containers import codecs, requirements
from containers.errors import (
    ContainerError,
    ModelLoadError,
    UnsupportedAccept,
    UnsupportedContentType,
    UserCodeError,
)
from containers.frameworks import ModelFramework
from containers.streaming import is_stream, streamed

log = logging.getLogger(__name__)

DEFAULT_PROGRAM = "inference.py"
#: Positional arguments each handler function takes before the optional ``context``.
ARITY = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4}
_module_ids = itertools.count(1)


@dataclass
class Context:
    """The optional last argument of handler functions (after SageMaker's serving context).

    ``response_headers`` set by user code are sent back
    (e.g. ``X-Amzn-SageMaker-Custom-Attributes``).
    """

    model_name: str
    model_dir: str
    request_headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "gpu_id": None}

    @property
    def custom_attributes(self) -> str | None:
        return self.request_headers.get("x-amzn-sagemaker-custom-attributes")


@dataclass(frozen=True)
class HandlerFunction:
    """One handler function, user-defined or default, called with or without ``context``."""

    name: str
    func: Callable[..., Any]
    user: bool
    takes_context: bool = False

    def __call__(self, *args: Any, context: Context) -> Any:
        try:
            if self.takes_context:
                return self.func(*args, context)
            return self.func(*args)
        except ContainerError:
            raise
        except (Exception, SystemExit) as exc:
            where = self.name if self.user else f"default {self.name}"
            log.exception("%s failed for model %s", where, context.model_name)
            raise UserCodeError(f"{where} raised {type(exc).__name__}: {exc}") from exc


def _user_function(module: ModuleType, name: str, source: Path) -> HandlerFunction | None:
    func = getattr(module, name, None)
    if func is None:
        return None
    if not callable(func):
        raise ModelLoadError(f"{source}: {name} is not a function")
    arity = ARITY[name]
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: trust the contract
        return HandlerFunction(name, func, user=True)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    if len(required) > arity + 1 or (len(positional) < arity and not varargs):
        raise ModelLoadError(
            f"{source}: {name} must take {arity} arguments (and optionally a context), "
            f"it takes {len(positional)}"
        )
    return HandlerFunction(name, func, user=True, takes_context=len(positional) > arity or varargs)


def program_file(program: str | None) -> str:
    """``SAGEMAKER_PROGRAM`` as the file it names in the code folder (``x`` is ``x.py``, as
    SageMaker's toolkits take a module name too); a path is refused, the folder is the code's."""
    name = (program or DEFAULT_PROGRAM).strip()
    if not name or "/" in name or "\\" in name or name.strip(".") == "":
        raise ModelLoadError(
            f"SAGEMAKER_PROGRAM={program!r} must be a file name in the code folder, not a path "
            "(e.g. inference.py)"
        )
    return name if name.endswith(".py") else f"{name}.py"


def load_user_module(
    code_dir: Path, program: str | None, *, required: bool = False
) -> tuple[ModuleType | None, Path]:
    """Import ``code_dir/program`` under a unique module name; ``None`` when there is none and
    none was asked for. ``required`` (a program named, or code given apart from the model):
    a missing program is an error, so the user's code is never silently left out."""
    file = program_file(program)
    source = code_dir.resolve() / file
    if not source.is_file():
        if not required and program is None:
            return None, source
        raise ModelLoadError(f"SAGEMAKER_PROGRAM={file!r} cannot be found: {_missing(code_dir)}")
    name = f"tandem_user_code_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    # Helper modules next to the program import as top-level modules, as on SageMaker.
    if str(source.parent) not in sys.path:
        sys.path.insert(0, str(source.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        log.exception("importing %s failed", source)
        raise ModelLoadError(
            f"SAGEMAKER_PROGRAM={file!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    return module, source


def _missing(code_dir: Path) -> str:
    """What the code folder holds instead, for the message of a program that is not there."""
    if not code_dir.is_dir():
        return f"there is no code folder {code_dir}"
    names = sorted(p.name for p in code_dir.iterdir() if p.suffix == ".py")[:10]
    found = ", ".join(names) if names else "no .py file"
    return f"{code_dir} holds {found}"


class ModelHandler:
    """A model's handler functions, resolved once; :meth:`invoke` runs one request through them."""

    def __init__(
        self,
        framework: ModelFramework,
        model_dir: Path,
        *,
        name: str = "model",
        program: str | None = None,
        code_dir: Path | None = None,
        install_requirements: bool = False,
        default_accept: str = codecs.JSON,
    ) -> None:
        """``code_dir``: the user's code apart from the model (``SAGEMAKER_SUBMIT_DIRECTORY``);
        else ``<model_dir>/code``."""
        self.framework = framework
        self.model_dir = model_dir
        self.name = name
        self.default_accept = default_accept
        if not model_dir.is_dir():
            raise ModelLoadError(f"model dir {model_dir} does not exist")
        code = code_dir or model_dir / "code"
        requirements.ensure(code, install=install_requirements)
        self.module, source = load_user_module(code, program, required=code_dir is not None)
        found = {
            fn: _user_function(self.module, fn, source) if self.module is not None else None
            for fn in ARITY
        }
        if found["transform_fn"] is not None:
            clash = [fn for fn in ("input_fn", "predict_fn", "output_fn") if found[fn] is not None]
            if clash:
                raise ModelLoadError(
                    f"{source.name} defines transform_fn and {', '.join(clash)}: transform_fn "
                    "replaces input_fn, predict_fn and output_fn, so define one or the other"
                )
        self.model_fn = found["model_fn"] or HandlerFunction(
            "model_fn", lambda model_dir: framework.load(Path(model_dir)), user=False
        )
        self.input_fn = found["input_fn"] or HandlerFunction(
            "input_fn", framework.input_fn, user=False
        )
        self.predict_fn = found["predict_fn"] or HandlerFunction(
            "predict_fn", framework.predict, user=False
        )
        self.output_fn = found["output_fn"] or HandlerFunction(
            "output_fn", framework.output_fn, user=False
        )
        self.transform_fn = found["transform_fn"]
        custom_in = self.transform_fn is not None or self.input_fn.user
        custom_out = self.transform_fn is not None or self.output_fn.user
        #: ``None``: user code decides what it accepts / produces.
        self.content_types: tuple[str, ...] | None = None if custom_in else framework.content_types
        self.accepts: tuple[str, ...] | None = None if custom_out else framework.accepts
        #: Default decoding and prediction: requests may be stacked (a user output_fn still runs
        #: once per request, on that request's rows).
        self.stackable = (
            self.transform_fn is None and not self.input_fn.user and not self.predict_fn.user
        )

    def context(self, request_headers: Mapping[str, str] | None = None) -> Context:
        return Context(self.name, str(self.model_dir), request_headers or {})

    def load(self) -> Any:
        return self.model_fn(str(self.model_dir), context=self.context())

    def unload(self, model: Any) -> None:
        try:
            self.framework.unload(model)
        finally:
            if self.module is not None:
                sys.modules.pop(self.module.__name__, None)

    def resolve_content_type(self, header: str | None) -> str:
        """The bare media type to decode with; 415 when the default ``input_fn`` can't."""
        media = codecs.media_type(header) if header else codecs.JSON
        if self.content_types is not None and media not in self.content_types:
            raise UnsupportedContentType(
                f"content type {media!r} is not supported; use one of "
                f"{', '.join(self.content_types)}"
            )
        return media

    def resolve_accept(self, header: str | None) -> str:
        """The media type to answer with; 406 when nothing in ``Accept`` can be produced."""
        chosen = codecs.negotiate(header, self.accepts, self.default_accept)
        if chosen is None:
            supported = ", ".join(self.accepts or ())
            raise UnsupportedAccept(f"cannot answer with any of {header!r}; use one of {supported}")
        return chosen

    def invoke(
        self, model: Any, body: bytes, content_type: str, accept: str, context: Context
    ) -> tuple[bytes, str]:
        """Run one request; ``content_type`` and ``accept`` come from the ``resolve_*`` methods."""
        if self.transform_fn is not None:
            result = self.transform_fn(model, body, content_type, accept, context=context)
            return _response(result, accept, "transform_fn")
        data = self.input_fn(body, content_type, context=context)
        return self.predict_encode(model, data, accept, context)

    def predict_encode(
        self, model: Any, data: Any, accept: str, context: Context
    ) -> tuple[bytes, str]:
        """``predict_fn`` then ``output_fn``: a request already through ``input_fn``."""
        prediction = self.predict_fn(data, model, context=context)
        return self.encode(prediction, accept, context)

    def encode(self, prediction: Any, accept: str, context: Context) -> tuple[bytes, str]:
        return _response(self.output_fn(prediction, accept, context=context), accept, "output_fn")


def _response(result: Any, accept: str, where: str) -> tuple[bytes, str]:
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
    if isinstance(result, bytes):
        return result, content_type
    if isinstance(result, str):
        return result.encode(), content_type
    if isinstance(result, bytearray | memoryview):
        return bytes(result), content_type
    if is_stream(result):  # a generator: sent part by part (containers/streaming.py)
        return streamed(result, where), content_type
    raise UserCodeError(
        f"{where} returned {type(result).__name__}; return bytes, str, a generator of them "
        "or (body, content_type)"
    )
