"""The models this container holds, by name: load (dropped again if loading fails), list, unload.

Used for both modes: a single-model container holds one model; a multi-model container
(``SAGEMAKER_MULTI_MODEL=true``) takes ``POST /models`` calls. Loading is refused with 507 when the
estimate (current RSS + the model's size on disk) would pass the container's memory limit, and the
model is unloaded again with 507 when the real RSS after loading passes it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containers import resources
from containers.errors import (
    BadRequest,
    InsufficientMemory,
    ModelAlreadyLoaded,
    ModelLoadError,
    ModelNotFound,
)
from containers.fastpath import FastPath
from containers.handler import ModelHandler
from containers.warmup import warm_up

log = logging.getLogger(__name__)

#: Segments start with a letter or digit, so ``.``, ``..`` and absolute names are impossible.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")
MAX_NAME = 1024
DEFAULT_PAGE = 100
MAX_PAGE = 1000

HandlerFactory = Callable[[str, Path], ModelHandler]
Executor = Callable[[Callable[[], Any]], "asyncio.Future[Any]"]


@dataclass
class HostedModel:
    """A model this container holds and serves, in either mode."""

    name: str
    url: str
    handler: ModelHandler
    model: Any
    #: Where its small predictions run; set by the service on the first request.
    fast: FastPath | None = None
    #: CPU seconds its load and warm-up took on the loading thread (``loadCpuSeconds``).
    load_cpu: float = 0.0


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or not MODEL_NAME.match(name):
        raise BadRequest(
            f"invalid model name {name[:100]!r}: use letters, digits, '.', '_', '-' and '/' "
            f"between segments that start with a letter or digit (at most {MAX_NAME} characters)"
        )
    return name


def model_path(url: str, root: Path) -> Path:
    """``url`` of ``POST /models``: an existing local directory (a plain path or ``file://``).

    A relative ``url`` names a directory under the models ``root`` (``SAGEMAKER_BASE_DIR/models``)
    and may not leave it: no ``..``, and no symlink resolving outside it.
    """
    if not isinstance(url, str) or not url:
        raise BadRequest('"url" must be a non-empty string naming a local directory')
    raw = url.removeprefix("file://")
    if "://" in raw:
        raise BadRequest(f'"url" must name a local directory, got {url!r}')
    path = Path(raw)
    if not path.is_absolute():
        if ".." in path.parts:
            raise BadRequest(f'"url" {url!r} must not contain ".."')
        base = root.resolve()
        path = (base / path).resolve()
        if path == base or not path.is_relative_to(base):
            raise BadRequest(f'"url" {url!r} resolves to {path}, not under the models root {base}')
    if not path.is_dir():
        raise BadRequest(f'"url" {url!r} is not an existing directory')
    return path


class ModelRegistry:
    """The models this process holds; mutations run on the event loop, loads in a worker thread."""

    def __init__(
        self, make_handler: HandlerFactory, memory_limit: int | None, models_root: Path
    ) -> None:
        self._make_handler = make_handler
        #: Relative ``url``s of ``POST /models`` resolve against it.
        self.models_root = models_root
        self._models: dict[str, HostedModel] = {}
        self._loading: set[str] = set()
        self.memory_limit = memory_limit

    def __len__(self) -> int:
        return len(self._models)

    def get(self, name: str) -> HostedModel:
        loaded = self._models.get(name)
        if loaded is None:
            raise ModelNotFound(f"model {name[:100]!r} is not loaded")
        return loaded

    def only(self) -> HostedModel:
        """The model of a single-model container."""
        return next(iter(self._models.values()))

    async def add(self, name: str, url: str, run: Executor) -> HostedModel:
        """Load ``url`` as ``name``; 409 if the name is taken (or loading), 507 if it won't fit."""
        check_name(name)
        path = model_path(url, self.models_root)
        if name in self._models or name in self._loading:
            raise ModelAlreadyLoaded(f"model {name!r} is already loaded")
        self._loading.add(name)
        try:
            loaded = await run(lambda: self._load(name, url, path))
            self._models[name] = loaded
            return loaded
        finally:
            self._loading.discard(name)

    def _load(self, name: str, url: str, path: Path) -> HostedModel:
        started = time.thread_time()
        limit = self.memory_limit
        if limit is not None:
            estimate = resources.rss() + resources.tree_size(path)
            if estimate > limit:
                raise InsufficientMemory(
                    f"loading {name!r} needs about {estimate >> 20} MiB with what is loaded, over "
                    f"the container's {limit >> 20} MiB memory limit; unload a model first"
                )
        handler = self._make_handler(name, path)
        model = handler.load()
        try:
            warm_up(handler, model, path)  # before the memory check: warming may allocate
        except ModelLoadError:
            _free(handler, [model])
            raise
        if limit is not None and resources.rss() > limit:
            used = resources.rss()
            held = [model]
            del model
            _free(handler, held)
            raise InsufficientMemory(
                f"model {name!r} took the container to {used >> 20} MiB, over its "
                f"{limit >> 20} MiB memory limit; it was unloaded again"
            )
        log.info("loaded model %s from %s", name, url)
        return HostedModel(name, url, handler, model, load_cpu=time.thread_time() - started)

    async def remove(self, name: str, run: Executor) -> None:
        loaded = self.get(name)
        del self._models[name]
        # Only ``held`` should refer to the model now (a request still running holds ``loaded``).
        handler, held = loaded.handler, [loaded.model]
        del loaded
        await run(lambda: _free(handler, held))
        log.info("unloaded model %s", name)

    def page(self, token: str | None, limit: int | None) -> dict[str, Any]:
        """One page of ``GET /models``; ``nextPageToken`` is present while more models follow."""
        return page({name: m.url for name, m in self._models.items()}, token, limit)


def page(urls: dict[str, str], token: str | None, limit: int | None) -> dict[str, Any]:
    """One page of ``GET /models`` over name -> url (the router of several workers shares it)."""
    size = DEFAULT_PAGE if limit is None else limit
    if not 1 <= size <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}, got {size}")
    start = 0
    if token:
        if not token.isdigit():
            raise BadRequest(f"invalid next_page_token {token[:40]!r}")
        start = int(token)
    names = sorted(urls)
    chosen = names[start : start + size]
    body: dict[str, Any] = {"models": [{"modelName": n, "modelUrl": urls[n]} for n in chosen]}
    if start + size < len(names):
        body["nextPageToken"] = str(start + size)
    return body


def _free(handler: ModelHandler, held: list[Any]) -> None:
    """Unload the only reference to a model in ``held``; a full GC pass only if that left it.

    A full pass takes about 80 ms with scikit-learn imported and holds the GIL all along, so
    every eviction would stall the process's requests; most models (no reference cycles) are
    freed the moment their last reference goes, which the weak reference shows.
    """
    model = held.pop()
    handler.unload(model)
    try:
        alive: Callable[[], Any] | None = weakref.ref(model)
    except TypeError:  # no weak references to this type: cannot tell
        alive = None
    del model
    if alive is None or alive() is not None:
        gc.collect()
    resources.trim_heap()
