"""``tandem serve``: the composition root, and its orchestration: specs -> containers -> healthy
-> HTTP -> orderly shutdown.

``serve`` builds every part once and hands it to the ones that need it: the settings, the state
store, the data plane (``DataPlane``: dispatcher, metrics, model managers, invocation core), the
control plane, the reconciler and the asynchronous workers, then ``create_app`` over them. Order
matters both ways: the listening socket is bound before anything starts (a busy port fails fast,
with nothing started), the HTTP server starts only once every container is healthy, and on
SIGINT/SIGTERM the server drains before the containers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

from gateway.edge.app import create_app
from gateway.edge.auth import AdminOnly
from gateway.edge.server import Server, bind, loop_factory, make_server
from gateway.folders import migrate, prune_endpoints
from gateway.lifecycle.backends import create_backend
from gateway.lifecycle.components import ComponentRunner
from gateway.lifecycle.reconciler import Reconciler
from gateway.lifecycle.supervisor import StartError
from gateway.live import EndpointTable
from gateway.serving.metric_calls import InstanceGauges
from gateway.serving.plane import DataPlane
from gateway.settings import GatewaySettings
from gateway.state.lock import state_lock
from pipelines.spec import EndpointSpec, load_specs

logger = logging.getLogger("tandem.gateway")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def run(spec_paths: Sequence[str | Path], settings: GatewaySettings) -> int:
    """Serve until SIGINT/SIGTERM; raises ``SpecError``, ``StartError``, ``StateDirBusy``, ..."""
    specs = load_specs(spec_paths)  # nothing starts unless every spec is valid
    configure_logging(settings.log_level)
    with state_lock(settings.state_dir), asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(specs, settings))
    return 0


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


async def serve(specs: list[EndpointSpec], settings: GatewaySettings) -> None:
    """Bring back what the state folder holds, apply the spec files, then serve until stopped.

    The endpoints of the spec files must all come up (else the start fails, as it always has);
    endpoints created earlier through the API that cannot start are ``Failed``, not fatal.
    """
    from gateway.asynchronous import AsyncInference
    from gateway.asynchronous.metrics import sample_backlog
    from gateway.autoscaling import (
        Evaluator,
        ScalingApi,
        ScalingStore,
        StoreMetrics,
        autoscaling_route,
    )
    from gateway.batch.jobs import BatchJobs, check_job
    from gateway.cloudwatch import MetricApi, MetricService, cloudwatch_routes
    from gateway.cloudwatch.alarm_api import AlarmApi
    from gateway.cloudwatch.alarms import Alarms
    from gateway.control import ControlPlane, control_route, service_route
    from gateway.control.apply import apply_spec
    from gateway.control.translate import parse_model_roots
    from gateway.logs import TARGET_PREFIX as LOGS
    from gateway.logs import LogsService
    from gateway.state import FILENAME, EndpointStatus, StateStore
    from gateway.usage import UsageService, usage_route

    sock = bind(settings.host, settings.port)
    for moved in migrate(settings.state_dir):
        logger.info("state folder: moved %s to the layout of this version", moved)
    store = StateStore(settings.state_dir / FILENAME)
    backend = create_backend(settings.backend, settings)
    # The data plane first: every edge, the reconciler and the workers are handed the one core.
    cloudwatch = MetricService.from_settings(settings)  # its .recorder is a MetricRecorder
    plane = DataPlane(EndpointTable(), settings, cloudwatch=cloudwatch.recorder)
    table = plane.table
    # The operator's own spec files are trusted with the model data they name.
    roots = parse_model_roots(settings.model_roots)
    roots += tuple(str(spec.source) for spec in specs if spec.source is not None)
    roots += tuple(
        url for spec in specs for c in spec.all_containers if (url := spec.model_data_url(c))
    )
    # CloudWatch alarms: step scaling and the deployment guardrails watch them.
    metric_api = MetricApi(cloudwatch)
    alarms = Alarms(
        metric_api,
        settings.state_dir / FILENAME,
        interval=settings.autoscaling_interval,
        minute=settings.autoscaling_minute,
    )
    control = ControlPlane(
        store,
        region=settings.region,
        account=settings.account,
        model_roots=roots,
        check_job=check_job,
        observe=table.observe,
        budget=settings.container_budget,
        alarms=alarms.store.alarms,
        instance_capacity=settings.instance_capacity,
    )
    reconciler = Reconciler(store, plane, backend, settings, control, alarms=alarms.store.alarms)
    control.reconciler = reconciler
    # Inference components' copies, in the same host budget as the endpoints' instances.
    components = ComponentRunner(store, plane, backend, settings, control, reconciler.budget)
    control.components = components
    jobs = BatchJobs(control, settings, reconciler.budget)  # a job's containers count too
    control.jobs = jobs
    queued = AsyncInference(store, plane, settings, roots)  # InvokeEndpointAsync
    # Gauges for CloudWatch, read before each flush of its metric store.
    cloudwatch.sample_with(InstanceGauges(table, settings.state_dir))
    cloudwatch.sample_with(functools.partial(sample_backlog, store, table))
    logs = LogsService(settings.state_dir, region=settings.region, account=settings.account)
    admins = AdminOnly(settings)
    usage = UsageService.from_settings(settings, cloudwatch)  # reads the recorder's events
    scaling = ScalingApi(
        ScalingStore(settings.state_dir / FILENAME),
        control,
        StoreMetrics(metric_api),
        region=settings.region,
        account=settings.account,
        alarms=alarms.store.alarms,
        budget=settings.container_budget,
    )
    evaluator = Evaluator(
        scaling,
        interval=settings.autoscaling_interval,
        minute=settings.autoscaling_minute,
        wanted=plane.held.wanted,
    )
    plane.held.listeners.append(evaluator.on_wanted)  # a variant at zero wakes at once
    AlarmApi(alarms, region=settings.region, account=settings.account).attach(metric_api)
    alarms.listeners.append(evaluator.on_alarm)  # step scaling policies named by AlarmActions
    alarms.derived.append(evaluator.tracking.alarms)  # target tracking's, in DescribeAlarms
    app = create_app(
        plane,
        settings,
        routes=[
            # Other AWS services on POST / claim their own requests first (gateway/services.py).
            service_route(logs.acall, LOGS, authorize=admins),
            *cloudwatch_routes(metric_api),
            autoscaling_route(scaling, authorize=admins),
            usage_route(usage, authorize=admins),
            control_route(control, authorize=admins),
            queued.route(),
        ],
        asynchronous=queued.app,
    )
    plane.metrics.per_model(usage.top_models)  # bounded: the top K models and "other"
    stop = asyncio.Event()
    server: Server | None = None

    def on_signal(sig: int) -> None:
        logger.info("received %s, shutting down", signal.Signals(sig).name)
        if stop.is_set() and server is not None:
            server.force_exit = True  # a second Ctrl-C skips draining connections
        stop.set()
        queued.stop()  # before the server closes the containers' clients
        plane.held.close()  # requests held for a variant at zero are throttled now
        reconciler.stop_restarting()
        if server is not None:
            server.should_exit = True

    async def start() -> None:
        await backend.reap_leftovers()
        for name in prune_endpoints(settings.state_dir, {r.name for r in store.endpoints()}):
            logger.info("state folder: removed the folder of deleted endpoint %s", name)
        reconciler.restore()
        components.restore()  # each waits for its endpoint to serve, then places its copies
        await jobs.resume()  # InProgress transform jobs run again (done files are skipped)
        for spec in specs:
            apply_spec(control, spec)
        names = [spec.name for spec in specs]
        # What was InService before a restart serves again before the port answers.
        await reconciler.settled([record.name for record in store.endpoints()])
        await components.settled()
        failed = []
        for name in names:
            record = store.get_endpoint(name)
            if record is None or record.status is EndpointStatus.FAILED:
                failed.append(record.failure_reason if record else f"{name}: deleted")
            elif record.failure_reason and record.status is EndpointStatus.IN_SERVICE:
                failed.append(record.failure_reason)  # an update of a spec endpoint rolled back
        if failed:
            raise StartError([str(reason) for reason in failed])
        await queued.start()  # what was queued before a restart runs again
        await cloudwatch.start()
        await evaluator.start()  # after the endpoints it scales are back
        await alarms.start()

    with _signal_handlers(on_signal), sock:
        try:
            if not await _until_stopped(start(), stop):
                return
            server = make_server(app, settings)
            if stop.is_set():
                return
            names = ", ".join(e.name for e in table.live()) or "no endpoints yet"
            host, port = sock.getsockname()[:2]
            logger.info("serving %s on http://%s:%d", names, host, port)
            with frozen_start():
                await server.serve(sockets=[sock])
        finally:
            await alarms.aclose()
            await evaluator.aclose()  # before the control plane it calls goes away
            await queued.aclose()  # unfinished requests stay queued for the next start
            await cloudwatch.aclose()  # what was recorded is flushed (the ledger's rows too)
            usage.close()
            await jobs.close()  # they stay InProgress and resume at the next start
            await components.close()
            await reconciler.close()
            await backend.reap_leftovers()
            scaling.store.close()
            store.close()
            logger.info("stopped")


@contextlib.contextmanager
def frozen_start() -> Iterator[int]:
    """What the start made (modules, settings, routes, restored state) leaves the cyclic
    collector's full passes while the gateway serves; yields how many objects that is.

    A full pass walked all of it, about 70 ms every few seconds under load, stalling every
    request in flight (docs/performance.md#garbage-collection). The start's garbage is collected
    first; a cycle of start objects dropped while serving is not freed until the end (a bounded,
    one-time set), when they are given back.
    """
    gc.collect()
    gc.freeze()
    try:
        yield gc.get_freeze_count()
    finally:
        gc.unfreeze()


async def _until_stopped(start: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``start`` unless ``stop`` is set first; True when it completed."""
    task = asyncio.ensure_future(start)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()  # re-raises a start failure
        return True
    task.cancel()  # the supervisor stops what it started
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


@contextlib.contextmanager
def _signal_handlers(handler: Callable[[int], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
