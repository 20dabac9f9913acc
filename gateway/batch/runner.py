"""Running a job: files in, ordered concurrent requests, atomic outputs, a failures report.

One producer reads files in order and cuts them into mini-batches; ``concurrency`` workers send
them; each file's results are put back in order and written as they become contiguous. A window of
``2 x concurrency`` batches bounds memory: the producer waits while that many are unwritten. A
failed request fails its file only: its partial output is discarded and the other files go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import fsspec

from gateway.batch.client import EndpointClient
from gateway.batch.config import (
    AssembleWith,
    BatchConfig,
    JoinSource,
    Plan,
    SplitType,
    resolve,
)
from gateway.batch.endpoint import endpoint_for, execution_parameters
from gateway.batch.errors import BatchError, InvocationError, RecordError
from gateway.batch.filters import (
    JsonPathFilter,
    Shaper,
    apply_input_filter,
    format_of,
    split_response,
)
from gateway.batch.progress import Tracker, make_tracker
from gateway.batch.records import MiniBatch, Record, mini_batches, read_records
from gateway.batch.sources import AtomicWriter, InputFile, OutputRoot, list_inputs, open_input

log = logging.getLogger("tandem.batch")

#: Batches read per trip to the reader thread, so SingleRecord jobs do not pay a hop per record.
READ_GROUP = 32


@dataclass(frozen=True, slots=True)
class FileFailure:
    input: str
    error: str
    record: int | None = None
    line: int | None = None


@dataclass(slots=True)
class BatchReport:
    """What a job did. ``ok`` is true when no file failed."""

    files: int = 0
    succeeded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    plan: Plan | None = None
    #: Where the failures report was written, when a file failed.
    report_url: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{len(self.succeeded)} file(s) done, {len(self.skipped)} skipped (output exists), "
            f"{len(self.failures)} failed; {self.records:,} records in {self.seconds:.1f}s "
            f"({rate:,.0f} records/s)"
        ]
        for f in self.failures:
            lines.append(f"  FAILED {f.input}: {f.error}")
        if self.report_url:
            lines.append(f"failures report: {self.report_url}")
        return "\n".join(lines)


def run_batch(config: BatchConfig, *, tracker: Tracker | None = None) -> BatchReport:
    """Run one job to the end (the Python API of ``tandem batch``)."""
    return asyncio.run(run_batch_async(config, tracker=tracker))


async def run_batch_async(
    config: BatchConfig, *, tracker: Tracker | None = None, signals: bool = True
) -> BatchReport:
    """``run_batch`` in a running loop; ``signals=False`` where the caller owns SIGTERM (a job
    inside ``tandem serve``, whose handler must not be replaced)."""
    started = time.monotonic()
    output = OutputRoot(config.output, config.storage_options)
    output.check_apart_from(config.input, config.storage_options)
    fs, inputs = await asyncio.to_thread(list_inputs, config.input, config.storage_options)
    report = BatchReport(files=len(inputs))
    todo = []
    for item in inputs:
        if not config.overwrite and await asyncio.to_thread(output.exists, item.rel):
            report.skipped.append(item.url)
        else:
            todo.append(item)
    tracker = tracker or make_tracker(config.progress)
    with _cancel_on_sigterm() if signals else contextlib.nullcontext():
        async with endpoint_for(config) as target:
            client = EndpointClient(
                target.url,
                target.name,
                timeout=config.timeout,
                retries=config.retries,
                target_container=config.target_container,
                target_model=config.target_model,
            )
            async with client:
                params = await execution_parameters(client, config.target_container)
                plan = resolve(config, params)
                client.concurrency = plan.concurrency
                report.plan = plan
                log.info("plan: %s", _describe_plan(plan))
                tracker.start(sum(item.size for item in todo))
                try:
                    job = _Job(config, plan, client, fs, output, tracker, report)
                    await job.run(todo)
                finally:
                    tracker.close()
    report.seconds = time.monotonic() - started
    if report.failures:
        data = json.dumps({"failures": [asdict(f) for f in report.failures]}, indent=2)
        report.report_url = await asyncio.to_thread(output.write_report, data.encode() + b"\n")
    else:
        await asyncio.to_thread(output.remove_report)
    return report


def _describe_plan(plan: Plan) -> str:
    return (
        f"{plan.strategy.value} [{plan.sources['BatchStrategy']}], max payload "
        f"{plan.max_payload_bytes // (1024 * 1024)} MB [{plan.sources['MaxPayloadInMB']}], "
        f"{plan.concurrency} concurrent [{plan.sources['MaxConcurrentTransforms']}]"
    )


@contextlib.contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """SIGTERM cancels the job like Ctrl-C, so partial outputs and containers are cleaned up."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel if task else lambda: None)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@dataclass(eq=False)
class _FileState:
    item: InputFile
    writer: AtomicWriter | None = None
    submitted: int = 0
    all_submitted: bool = False
    next_seq: int = 0
    done_bytes: int = 0
    pending: dict[int, tuple[bytes, MiniBatch]] = field(default_factory=dict)
    failed: bool = False
    finished: bool = False


class _Job:
    def __init__(
        self,
        config: BatchConfig,
        plan: Plan,
        client: EndpointClient,
        fs: fsspec.AbstractFileSystem,
        output: OutputRoot,
        tracker: Tracker,
        report: BatchReport,
    ) -> None:
        self.config = config
        self.plan = plan
        self.client = client
        self.fs = fs
        self.output = output
        self.tracker = tracker
        self.report = report
        self.queue: asyncio.Queue[tuple[_FileState, MiniBatch] | None] = asyncio.Queue(
            maxsize=plan.concurrency
        )
        self.window = asyncio.Semaphore(2 * plan.concurrency)
        in_filter = JsonPathFilter(config.input_filter)
        fmt = config.input_format
        self.transform = (
            None if in_filter.identity else (lambda data: apply_input_filter(data, fmt, in_filter))
        )
        self.shaper = Shaper(
            input_format=fmt,
            join=config.join_source is JoinSource.INPUT,
            output_filter=JsonPathFilter(config.output_filter),
        )
        self.lines = config.assemble_with is AssembleWith.LINE
        # Raw answers are written untouched unless records must be cut apart or reshaped.
        self.raw = self.shaper.passthrough and (
            not self.lines or config.split_type is SplitType.NONE
        )

    async def run(self, files: list[InputFile]) -> None:
        workers = [asyncio.create_task(self._work()) for _ in range(self.plan.concurrency)]
        started: list[_FileState] = []
        try:
            for item in files:
                started.append(_FileState(item))
                await self._produce(started[-1])
            for _ in workers:
                await self.queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            # Interrupted: no half-written output stays behind (a rerun redoes these files).
            for state in started:
                if not (state.finished or state.failed) and state.writer is not None:
                    state.writer.discard()

    # --- reading ------------------------------------------------------------------------------

    async def _produce(self, state: _FileState) -> None:
        stream = None
        try:
            state.writer = await asyncio.to_thread(self.output.writer, state.item.rel)
            stream = await asyncio.to_thread(open_input, self.fs, state.item)
            batches = mini_batches(
                read_records(stream, self.config.split_type, self.transform),
                self.plan.strategy,
                self.plan.max_payload_bytes,
            )
            while not state.failed:
                group = await asyncio.to_thread(lambda: list(itertools.islice(batches, READ_GROUP)))
                if not group:
                    break
                for batch in group:
                    await self.window.acquire()
                    if state.failed:
                        self.window.release()
                        break
                    state.submitted += 1
                    await self.queue.put((state, batch))
        except RecordError as exc:
            self._fail(state, exc.message, exc.record, exc.line)
        except (BatchError, OSError) as exc:
            self._fail(state, str(exc))
        finally:
            if stream is not None:
                stream.close()
        state.all_submitted = True
        await self._maybe_finish(state)

    # --- sending ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while (item := await self.queue.get()) is not None:
            state, batch = item
            if state.failed:
                self.window.release()
                continue
            try:
                data = await self._outputs(batch.records, batch.seq)
            except RecordError as exc:
                self.window.release()
                self._fail(state, exc.message, exc.record, exc.line)
                continue
            except Exception as exc:  # a bug must fail one file, not stall the producer
                log.exception("unexpected error on %s", state.item.url)
                self.window.release()
                self._fail(state, f"{batch.describe()}: unexpected error: {exc!r}")
                continue
            await self._deliver(state, batch, data)

    async def _outputs(self, records: list[Record], seq: int) -> bytes:
        """The bytes written for ``records``; on a model error, find the record that causes it."""
        batch = MiniBatch(seq, records)
        try:
            body, content_type = await self.client.invoke(
                batch.body, self.config.content_type, self.config.accept
            )
        except InvocationError as exc:
            # Only a model rejecting its input is about a record; bisect to name that record.
            if exc.code != "ModelError" or exc.retryable or len(records) == 1:
                first = records[0]
                raise RecordError(
                    f"{batch.describe()}: {exc.message}", record=first.number, line=first.line
                ) from exc
            half = len(records) // 2
            return await self._outputs(records[:half], seq) + await self._outputs(
                records[half:], seq
            )
        return self._shape(records, body, content_type or self.config.accept or "")

    def _shape(self, records: list[Record], body: bytes, content_type: str) -> bytes:
        if self.raw:
            return body + b"\n" if self.lines and not body.endswith(b"\n") else body
        fmt = format_of(content_type)
        try:
            outputs = split_response(body, fmt, len(records))
        except ValueError as exc:
            first = records[0]
            where = MiniBatch(0, records).describe()
            raise RecordError(f"{where}: {exc}", record=first.number, line=first.line) from exc
        shaped = []
        for record, out in zip(records, outputs, strict=True):
            try:
                shaped.append(self.shaper.shape(record.data, out, fmt))
            except (ValueError, UnicodeDecodeError) as exc:
                raise RecordError(
                    f"record {record.number} (line {record.line}): {exc}",
                    record=record.number,
                    line=record.line,
                ) from exc
        sep = b"\n" if self.lines else b""
        return sep.join(shaped) + sep

    # --- writing ------------------------------------------------------------------------------

    async def _deliver(self, state: _FileState, batch: MiniBatch, data: bytes) -> None:
        if state.failed:
            self.window.release()
            return
        state.pending[batch.seq] = (data, batch)
        assert state.writer is not None
        while state.next_seq in state.pending:
            chunk, done = state.pending.pop(state.next_seq)
            state.writer.write(chunk)
            state.next_seq += 1
            state.done_bytes += done.input_bytes
            self.tracker.advance(len(done.records), done.input_bytes)
            self.report.records += len(done.records)
            self.report.bytes += done.input_bytes
            self.window.release()
        await self._maybe_finish(state)

    async def _maybe_finish(self, state: _FileState) -> None:
        if state.failed or state.finished or not state.all_submitted:
            return
        if state.next_seq < state.submitted:
            return
        state.finished = True
        assert state.writer is not None
        try:
            await asyncio.to_thread(state.writer.commit)
        except (BatchError, OSError) as exc:
            state.finished = False
            self._fail(state, f"cannot write output: {exc}")
            return
        self.report.succeeded.append(self.output.display(state.item.rel))

    def _fail(
        self, state: _FileState, message: str, record: int | None = None, line: int | None = None
    ) -> None:
        if state.failed:
            return
        state.failed = True
        for _ in state.pending:
            self.window.release()
        state.pending.clear()
        if state.writer is not None:
            state.writer.discard()
        self.tracker.file_failed(max(0, state.item.size - state.done_bytes))
        self.report.failures.append(FileFailure(state.item.url, message, record, line))
        log.warning("%s failed: %s", state.item.url, message)
