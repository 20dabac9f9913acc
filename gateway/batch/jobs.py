"""The control plane's transform jobs, run by the batch runner inside ``tandem serve``.

``BatchJobs`` is the control plane's ``JobRunner``. ``start`` schedules one asyncio task per job:
it reads the job's plan, starts the model's containers (a ``Supervisor`` and the runtime app on a
loopback port of their own, so they never appear among the gateway's endpoints), runs
``run_batch_async`` against them with the job's settings, writes progress into the job's row and
ends the job ``Completed``, ``Failed`` (with a reason) or ``Stopped``. A job interrupted by the
gateway stopping, or dying, stays ``InProgress``; ``resume`` runs it again at the next start, and
the batch runner skips the files whose output exists, so every output is written once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.batch.config import MAX_PAYLOAD_MB, MB, BatchConfig
from gateway.batch.embedded import embedded_gateway
from gateway.batch.errors import ConfigError
from gateway.batch.progress import Tracker
from gateway.batch.runner import BatchReport, run_batch_async
from gateway.control.plane import ControlPlane, JobPlan
from gateway.folders import JOBS, endpoint_dir
from gateway.lifecycle.backends import create_backend
from gateway.lifecycle.budget import ContainerBudget
from gateway.lifecycle.supervisor import StartError
from gateway.settings import GatewaySettings
from gateway.state import JobStatus, StateError, StateStore, WrongState
from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec

log = logging.getLogger("tandem.jobs")

#: Where the jobs' containers keep their folders, under the gateway's state folder.
JOBS_FOLDER = JOBS
#: Longest FailureReason kept (SageMaker's own limit).
MAX_REASON = 1024
#: Seconds between two progress writes while records flow.
PROGRESS_INTERVAL = 1.0
#: The batch runner's setting names -> the ``CreateTransformJob`` members they come from.
_MEMBERS = {
    "split_type": "TransformInput.SplitType",
    "content_type": "TransformInput.ContentType",
    "batch_strategy": "BatchStrategy",
    "max_payload_mb": "MaxPayloadInMB",
    "max_concurrent": "MaxConcurrentTransforms",
    "assemble_with": "TransformOutput.AssembleWith",
    "accept": "TransformOutput.Accept",
    "input_filter": "DataProcessing.InputFilter",
    "output_filter": "DataProcessing.OutputFilter",
    "join_source": "DataProcessing.JoinSource",
    "timeout": "ModelClientConfig.InvocationsTimeoutInSeconds",
    "retries": "ModelClientConfig.InvocationsMaxRetries",
}
_WORDS = re.compile(r"\b(" + "|".join(_MEMBERS) + r")\b")
#: Stands in for the job's endpoint until its containers run (only the settings are checked).
_LATER = "http://127.0.0.1"


def check_job(options: Mapping[str, Any]) -> None:
    """The batch runner's rules for a ``CreateTransformJob``, so that a job that cannot work is
    refused by the call, naming SageMaker's members, rather than failing once it runs."""
    try:
        BatchConfig.build(**options, endpoint_url=_LATER, endpoint="check")
    except ConfigError as exc:
        lines = str(exc).splitlines()[1:] or [str(exc)]  # after "invalid batch settings:"
        problems = [line.strip().removeprefix("config: ") for line in lines]
        text = _WORDS.sub(lambda m: _MEMBERS[m.group(1)], "; ".join(problems))
        raise ConfigError(text) from exc


class BatchJobs:
    """Runs the control plane's transform jobs on the gateway's event loop."""

    def __init__(
        self,
        plane: ControlPlane,
        settings: GatewaySettings,
        budget: ContainerBudget | None = None,
    ) -> None:
        """``budget``: the host budget the endpoints' containers count in; a job's count too
        (one that does not fit fails, naming the limit)."""
        self._plane = plane
        self._budget = budget
        self._store: StateStore = plane.store
        # The jobs' own folder, backend and runtime app: a job is never a gateway endpoint, its
        # containers never clash with one of the same name, and its leftovers are its own to reap.
        self._settings = settings.model_copy(
            update={
                "host": "127.0.0.1",
                "port": 0,
                "state_dir": settings.state_dir / JOBS_FOLDER,
                # The job keeps to its own payload limit (MaxPayloadInMB or the container's).
                "max_payload": max(settings.max_payload, MAX_PAYLOAD_MB * MB),
                "auth": "none",  # loopback, reached by the job alone
            }
        )
        self._backend = create_backend(settings.backend, self._settings)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    # ---- what the control plane calls ------------------------------------------------------

    def start(self, job: str) -> None:
        """Run ``job`` in the background (on the running loop); a running job is left alone."""
        if self._closing or job.lower() in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"transform job {job}")
        self._tasks[job.lower()] = task

    def stop(self, job: str) -> None:
        """``job`` is ``Stopping``: cancel it; it ends ``Stopped`` once its containers stopped."""
        task = self._tasks.get(job.lower())
        if task is not None and task.cancel():
            return
        # Nothing runs it here (it ended meanwhile, or never ran): end it now.
        self._stopped(job)

    # ---- the gateway's start and shutdown ----------------------------------------------------

    async def resume(self) -> list[str]:
        """At start: remove what a killed gateway left of its jobs' containers, then run every
        ``InProgress`` job again (a ``Stopping`` one ends ``Stopped``: what ran it is gone)."""
        await self._backend.reap_leftovers()
        resumed = []
        for record in self._store.jobs({JobStatus.IN_PROGRESS, JobStatus.STOPPING}):
            if record.status is JobStatus.STOPPING:
                self._stopped(record.name)
                await self._clean(record.name)
            else:
                self.start(record.name)
                resumed.append(record.name)
        if resumed:
            log.info("resuming transform job(s): %s", ", ".join(resumed))
        return resumed

    async def close(self) -> None:
        """Shutdown: cancel every job (its containers stop); they stay ``InProgress`` and resume
        at the next start, except those being stopped, which end ``Stopped``."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._backend.reap_leftovers()

    # ---- one job -----------------------------------------------------------------------------

    async def _run(self, name: str) -> None:
        try:
            await self._run_once(name)
        finally:
            self._tasks.pop(name.lower(), None)

    async def _run_once(self, name: str) -> None:
        """Run the job and record how it ended; a cancel during shutdown records nothing."""
        try:
            outcome = await self._attempt(name)
        except asyncio.CancelledError:
            if self._stopped(name):
                await self._clean(name)
            raise
        except Exception as exc:
            outcome = (JobStatus.FAILED, _reason(exc))
        if outcome is None:
            self._stopped(name)
            return
        status, reason = outcome
        try:
            self._store.set_job_status(name, status, reason, expect={JobStatus.IN_PROGRESS})
            log.info("transform job %s: %s%s", name, status, f": {reason}" if reason else "")
        except WrongState:
            self._stopped(name)  # a stop asked meanwhile wins
        except StateError:
            log.exception("transform job %s: cannot record its end (%s)", name, status)
            return
        await self._clean(name)

    async def _attempt(self, name: str) -> tuple[JobStatus, str | None] | None:
        """Run the job once: its final status and reason; ``None`` when there is nothing to run."""
        plan = self._plane.job_plan(name)
        if plan is None or plan.job.status is not JobStatus.IN_PROGRESS:
            return None
        self._store.job_started(name)
        tracker = StoreTracker(self._store, name)
        tracker.stage("Starting")
        config = self._config(plan)
        spec = self._spec(plan, config)
        log.info("transform job %s: starting %d container(s)", name, len(spec.containers))
        async with embedded_gateway(
            spec, self._settings, self._backend, reap=False, budget=self._budget
        ) as url:
            tracker.stage("Transforming")
            job = config.model_copy(update={"endpoint_url": url})
            report = await run_batch_async(job, tracker=tracker, signals=False)
        tracker.finish(report)
        log.info("transform job %s: %s", name, report.summary())
        if report.failures:
            return JobStatus.FAILED, _failed_files(report)
        return JobStatus.COMPLETED, None

    def _config(self, plan: JobPlan) -> BatchConfig:
        options = plan.options
        storage: dict[str, Any] = {}
        s3 = any(str(options.get(k, "")).startswith("s3://") for k in ("input", "output"))
        if s3 and self._settings.s3_endpoint_url:
            storage["endpoint_url"] = self._settings.s3_endpoint_url
        return BatchConfig.build(
            **options,
            endpoint_url=_LATER,
            endpoint=plan.spec.name,
            storage_options=storage,
            progress=False,
        )

    def _spec(self, plan: JobPlan, config: BatchConfig) -> EndpointSpec:
        """The job's endpoint: its requests may take the job's own invocation timeout (a model
        from a spec file already runs its command in that file's folder: ``to_spec``)."""
        return plan.spec.model_copy(update={"timeout": config.timeout})

    def _stopped(self, name: str) -> bool:
        """``Stopping`` -> ``Stopped``; False (and nothing changed) from any other status."""
        try:
            self._store.set_job_status(name, JobStatus.STOPPED, expect={JobStatus.STOPPING})
        except StateError:  # WrongState: not being stopped (a shutdown); NotFound: gone
            return False
        log.info("transform job %s: Stopped", name)
        return True

    async def _clean(self, name: str) -> None:
        """A finished job's copies of its model go; each container's log stays, for a look."""
        folder = endpoint_dir(Path(self._settings.state_dir), name)

        def remove() -> None:
            for container in folder.glob("*/*"):  # <instance>/<hostname>
                for item in container.iterdir() if container.is_dir() else ():
                    if item.name == "container.log":
                        continue
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)

        try:
            await asyncio.to_thread(remove)
        except OSError as exc:
            log.warning("transform job %s: cannot clean %s: %s", name, folder, exc)


class StoreTracker(Tracker):
    """Progress into the job's row (``DescribeTransformJob``'s ``Progress``): at each stage, at
    most once per ``interval`` while records flow, and at the end."""

    def __init__(self, store: StateStore, job: str, interval: float = PROGRESS_INTERVAL) -> None:
        super().__init__()
        self.store = store
        self.job = job
        self.interval = interval
        self.current = "Starting"
        self.totals: dict[str, Any] = {}
        self._last = 0.0

    def stage(self, name: str) -> None:
        self.current = name
        self.write()

    def start(self, total_bytes: int) -> None:
        super().start(total_bytes)
        self.write()

    def close(self) -> None:
        self.write()

    def finish(self, report: BatchReport) -> None:
        self.current = "Done"
        self.totals = {
            "Files": report.files,
            "FilesDone": len(report.succeeded),
            "FilesSkipped": len(report.skipped),
            "FilesFailed": len(report.failures),
            "Seconds": round(report.seconds, 3),
        }
        if report.report_url:
            self.totals["FailuresReport"] = report.report_url
        self.write()

    def snapshot(self) -> dict[str, Any]:
        eta = self.eta()
        return {
            "Stage": self.current,
            "Records": self.records,
            "BytesDone": self.done_bytes,
            "BytesTotal": self.total_bytes,
            "FilesFailed": self.failed_files,
            "RecordsPerSecond": round(self.rate, 1),
            "EtaSeconds": None if eta is None else round(eta, 1),
            **self.totals,
        }

    def write(self) -> None:
        self._last = time.monotonic()
        try:
            self.store.set_job_progress(self.job, self.snapshot())
        except StateError as exc:  # progress is worth a log line, not the job
            log.warning("transform job %s: cannot record progress: %s", self.job, exc)

    def _show(self) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.write()


def _failed_files(report: BatchReport) -> str:
    first = report.failures[0]
    text = (
        f"{len(report.failures)} of {report.files} input file(s) failed; the first, "
        f"{first.input}: {first.error}"
    )
    if report.report_url:
        text += f" (every failure is listed in {report.report_url})"
    return _cut(text)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StartError):
        text = "The model's containers did not start:\n" + "\n".join(exc.problems)
    elif isinstance(exc, TandemError):
        text = str(exc)
    else:  # a bug: its details go to the log, not into the API's answers
        log.error("transform job failed: unexpected %s", type(exc).__name__, exc_info=exc)
        text = (
            f"An internal error occurred while running the transform job ({type(exc).__name__}); "
            "the gateway's log has the details."
        )
    return _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 15] + "...(truncated)"
