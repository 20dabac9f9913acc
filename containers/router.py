"""A multi-model container on several processes: one router in front of N worker processes.

``SAGEMAKER_MODEL_SERVER_WORKERS=N`` with ``SAGEMAKER_MULTI_MODEL=true``: the main process binds
the public port, starts N ordinary multi-model servers on private loopback ports and routes.
Each model is loaded into ONE worker (the one with the fewest loads running, then the fewest
models), so memory is not multiplied by N, and loads that land on different workers run at
the same time. The router owns the memory limit: a load is refused with 507 when the whole
container's resident memory (router + workers) plus the loads in flight plus the model's size on
disk would pass it, and unloaded again when the real total passes it after loading. A worker that
dies takes the container down (its models are gone; the platform restarts the container).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from containers import resources
from containers.errors import (
    ContainerError,
    InsufficientMemory,
    ModelAlreadyLoaded,
    ModelNotFound,
)
from containers.proxy import Request, Response, ServerProtocol, WorkerLinks, error, respond
from containers.registry import check_name, model_path, page
from containers.settings import ContainerSettings

log = logging.getLogger("containers.router")
#: Set in a worker's environment: the inherited file descriptor of its listening socket.
WORKER_FD_ENV = "TANDEM_WORKER_FD"
#: Seconds the workers have to answer ``/ping`` after starting.
START_TIMEOUT = 300.0
_TARGET = b"x-amzn-sagemaker-target-model"


@dataclass(eq=False)
class Worker:
    index: int
    port: int
    proc: asyncio.subprocess.Process
    links: WorkerLinks
    loading: int = 0
    models: int = 0
    #: Loads in one worker run one at a time, so its memory before and after is the model's.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def rss(self) -> int:
        return resources.rss(self.proc.pid)


@dataclass
class Hosted:
    worker: Worker
    url: str


class Router:
    def __init__(self, settings: ContainerSettings, workers: list[Worker]) -> None:
        self.settings = settings
        self.workers = workers
        self.memory_limit = resources.memory_limit(settings.memory_limit_mb)
        self.models: dict[str, Hosted] = {}
        self._pending: set[str] = set()
        self._reserved = 0
        self.ready = False

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except ContainerError as exc:
            return error(exc.status, exc.code, exc.message)
        except (ConnectionError, OSError) as exc:
            return error(502, "worker_unavailable", f"the worker did not answer: {exc}")

    async def _route(self, request: Request) -> Response:
        method, path = request.method, request.path
        if path == "/ping" and method == b"GET":
            return respond(200 if self.ready else 503, b"")
        if path == "/models":
            if method == b"POST":
                return await self._load(request)
            if method == b"GET":
                return self._list(request.query)
        elif path.startswith("/models/"):
            name = unquote(path[len("/models/") :])
            if method == b"POST" and name.endswith("/invoke"):
                worker = self._owner(name[: -len("/invoke")])
                return await worker.links.call(request, forward=True)
            if method == b"GET":
                self._owner(name)
                return _json(200, {"modelName": name, "modelUrl": self.models[name].url})
            if method == b"DELETE":
                return await self._unload(name, request)
        elif path == "/invocations" and method == b"POST":
            target = request.header(_TARGET)
            if target:
                worker = self._owner(target.decode("latin-1"))
                return await worker.links.call(request, forward=True)
            return await self.workers[0].links.call(request)  # the worker explains the error
        elif path == "/execution-parameters" and method == b"GET":
            return await self.workers[0].links.call(request)
        elif path == "/metrics" and method == b"GET":
            return await self._metrics(request)
        return error(404, "not_found", f"{method.decode()} {path}: Not Found")

    def _owner(self, name: str) -> Worker:
        hosted = self.models.get(name)
        if hosted is None:
            return _missing(name)
        return hosted.worker

    def total_rss(self) -> int:
        """Router and workers together: the memory the container really holds."""
        return resources.rss() + sum(w.rss() for w in self.workers)

    async def _load(self, request: Request) -> Response:
        try:
            spec = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error(400, "bad_request", f"the body is not valid JSON: {exc}")
        name = spec.get("model_name") if isinstance(spec, dict) else None
        url = spec.get("url") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not isinstance(url, str):
            msg = 'the body must be {"model_name": <name>, "url": <local directory>}'
            return error(400, "bad_request", msg)
        check_name(name)
        path = model_path(url, self.settings.models_dir)
        if name in self.models or name in self._pending:
            raise ModelAlreadyLoaded(f"model {name!r} is already loaded")
        need = resources.tree_size(path)
        limit = self.memory_limit
        if limit is not None:
            estimate = self.total_rss() + self._reserved + need
            if estimate > limit:
                raise InsufficientMemory(
                    f"loading {name!r} needs about {estimate >> 20} MiB with what is loaded and "
                    f"loading, over the container's {limit >> 20} MiB memory limit; unload a "
                    "model first"
                )
        worker = min(self.workers, key=lambda w: (w.loading, w.models))
        self._pending.add(name)
        self._reserved += need
        worker.loading += 1
        try:
            async with worker.lock:
                log.info("loading model %s in worker %d", name, worker.index)
                before = worker.rss()
                response = await worker.links.call(request)
                added = max(worker.rss() - before, 0)
            if response.status != 200:
                return response
            if limit is not None and self.total_rss() > limit:
                used = self.total_rss()
                await worker.links.call(_delete_request(name))
                raise InsufficientMemory(
                    f"model {name!r} took the container to {used >> 20} MiB, over its "
                    f"{limit >> 20} MiB memory limit; it was unloaded again"
                )
            self.models[name] = Hosted(worker, url)
            worker.models += 1
            log.info("loaded model %s in worker %d (+%d KiB)", name, worker.index, added >> 10)
            answer = {"status": f"Model {name!r} loaded", "worker": worker.index}
            return _json(200, {**answer, "memoryBytes": added, **_cpu_of(response)})
        finally:
            worker.loading -= 1
            self._reserved -= need
            self._pending.discard(name)

    async def _unload(self, name: str, request: Request) -> Response:
        worker = self._owner(name)
        hosted = self.models.pop(name)
        hosted.worker.models -= 1
        # Not behind the worker's load: an unload frees the room a load waits for. What it
        # frees may come off what a load beside it measures; the gateway counts no model as
        # less than its files.
        response = await worker.links.call(request)
        log.info("unloaded model %s from worker %d", name, worker.index)
        return response

    def _list(self, query: str) -> Response:
        params = parse_qs(query)
        raw_limit = params.get("limit", [None])[0]
        if raw_limit is not None and not raw_limit.isdigit():
            return error(400, "bad_request", f"limit must be a positive integer, got {raw_limit}")
        token = params.get("next_page_token", [None])[0]
        urls = {name: hosted.url for name, hosted in self.models.items()}
        return _json(200, page(urls, token, int(raw_limit) if raw_limit else None))

    async def _metrics(self, request: Request) -> Response:
        texts = []
        for worker in self.workers:
            answer = await worker.links.call(request)
            texts.append((worker.index, answer.body.decode("utf-8", "replace")))
        return respond(200, merge_metrics(texts), b"text/plain; version=0.0.4; charset=utf-8")


def merge_metrics(texts: list[tuple[int, str]]) -> bytes:
    """The workers' Prometheus texts as one: each family once, every sample labelled ``worker``."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for index, text in texts:
        current: tuple[list[str], list[str]] | None = None
        for line in text.splitlines():
            if line.startswith("# "):
                words = line.split(" ", 3)
                if len(words) >= 3 and words[1] in ("HELP", "TYPE"):
                    current = families.setdefault(words[2], ([], []))
                    if len(current[0]) < 2 and line not in current[0]:
                        current[0].append(line)
                continue
            if not line.strip() or current is None:
                continue
            current[1].append(_labelled(line, index))
    lines = [line for head, samples in families.values() for line in (*head, *samples)]
    return ("\n".join(lines) + "\n").encode()


def _labelled(sample: str, index: int) -> str:
    name, brace, rest = sample.partition("{")
    if brace:
        return (
            f'{name}{{worker="{index}",{rest}'
            if not rest.startswith("}")
            else (f'{name}{{worker="{index}"{rest}')
        )
    name, _, value = sample.partition(" ")
    return f'{name}{{worker="{index}"}} {value}'


def _cpu_of(response: Response) -> dict[str, Any]:
    """The worker's ``loadCpuSeconds``, passed on (nothing if its answer has none)."""
    with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError):
        value = json.loads(response.body).get("loadCpuSeconds")
        if isinstance(value, int | float):
            return {"loadCpuSeconds": value}
    return {}


def _missing(name: str) -> Worker:
    raise ModelNotFound(f"model {name[:100]!r} is not loaded")


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return respond(status, json.dumps(body).encode())


def _delete_request(name: str) -> Request:
    url = f"/models/{quote(name, safe='')}".encode()
    return Request(b"DELETE", url, [(b"host", b"worker")], b"", True)


async def _start_workers(settings: ContainerSettings) -> list[Worker]:
    workers = []
    for index in range(settings.workers):
        listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
        env = {**os.environ, WORKER_FD_ENV: str(listener.fileno())}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "containers", "serve", env=env, pass_fds=(listener.fileno(),)
        )
        port = listener.getsockname()[1]
        listener.close()  # the worker holds its copy
        workers.append(Worker(index, port, proc, WorkerLinks("127.0.0.1", port)))
    return workers


async def _wait_ready(workers: list[Worker]) -> None:
    ping = Request(b"GET", b"/ping", [(b"host", b"worker")], b"", True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    for worker in workers:
        while True:
            if worker.proc.returncode is not None:
                raise RuntimeError(f"worker {worker.index} exited with {worker.proc.returncode}")
            with contextlib.suppress(OSError, ConnectionError):
                if (await worker.links.call(ping)).status == 200:
                    break
            if loop.time() > deadline:
                raise RuntimeError(f"worker {worker.index} did not start in {START_TIMEOUT:g} s")
            await asyncio.sleep(0.05)


async def _run(settings: ContainerSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers = await _start_workers(settings)
    router = Router(settings, workers)
    limit = settings.max_payload_bytes + 1024 * 1024  # the load API's JSON bodies are small
    server = await loop.create_server(
        lambda: ServerProtocol(router.handle, limit), settings.host, settings.port, backlog=2048
    )
    exits = [asyncio.ensure_future(w.proc.wait()) for w in workers]
    stopping = asyncio.ensure_future(stop.wait())
    code = 0
    try:
        starting = asyncio.ensure_future(_wait_ready(workers))
        await asyncio.wait([starting, stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and starting.exception() is None:
            router.ready = True
            log.info("%d workers ready on ports %s", len(workers), [w.port for w in workers])
            await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        elif starting.done():
            log.error("the workers did not start: %s", starting.exception())
            return 1
        else:
            starting.cancel()
        if not stopping.done():
            dead = [w.index for w in workers if w.proc.returncode is not None]
            log.error("worker %s exited: stopping the container", dead)
            code = 1
    finally:
        server.close()
        for worker in workers:
            worker.links.close()
            if worker.proc.returncode is None:
                worker.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*exits, return_exceptions=True), 15)
        for worker in workers:
            if worker.proc.returncode is None:
                worker.proc.kill()
        stopping.cancel()
    return code


def run_router(settings: ContainerSettings) -> int:
    """Serve until SIGTERM (0) or until a worker dies (1)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(settings))
    return uvloop.run(_run(settings))
