"""InvokeEndpointAsync's acceptance: check what a call names, then queue it, before the 202.

Everything that can be known wrong at submit time is refused here with ``ValidationError`` and
nothing queued: an unknown endpoint or one without ``async_inference``, an input outside the
roots the caller's role may name (``inputs.py``), missing, a folder or
over ``TANDEM_ASYNC_MAX_BYTES``, an output extension that would climb out of the output path, an
endpoint no InvokeEndpointAsync call can route (Direct execution, a MultiModel container).
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Callable
from typing import Protocol

from gateway.asynchronous.commits import GroupCommit
from gateway.asynchronous.inputs import InputPolicy
from gateway.asynchronous.storage import Storage, StorageError, join
from gateway.control.context import DEFAULT_ACCOUNT
from gateway.edge.async_route import Accepted, AsyncSubmission
from gateway.errors import InvalidRequest, endpoint_not_found
from gateway.live import EndpointTable, LiveEndpoint
from gateway.state import Enqueue, QueuedInvocation
from pipelines.spec import AsyncInferenceSpec, EndpointSpec, Execution, Mode

#: An InferenceId that can name a file as it is; any other gets a generated file name.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
OUTPUT_SUFFIX = ".out"
FAILURE_SUFFIX = "-error.out"


class Runner(Protocol):
    """The workers, as the submitter sees them (``gateway.asynchronous.worker.Workers``)."""

    def admit(self, endpoint: str) -> bool: ...

    def admitted(self, endpoint: str, row: QueuedInvocation | None, direct: bool) -> None: ...


class Submitter:
    """Turns checked calls into queued rows; ``wake`` tells the workers there is work."""

    def __init__(
        self,
        commits: GroupCommit,
        table: EndpointTable,
        storage: Storage,
        policy: InputPolicy,
        max_bytes: int,
        wake: Callable[[], None],
        account: str = DEFAULT_ACCOUNT,
        runner: Runner | None = None,
    ) -> None:
        self.runner = runner
        self.commits = commits
        self.account = account
        self.table = table
        self.storage = storage
        self.policy = policy
        self.max_bytes = max_bytes
        self.wake = wake

    async def __call__(self, call: AsyncSubmission) -> Accepted:
        live = self._endpoint(call.endpoint)
        config = live.spec.async_inference
        assert config is not None
        input_location = None
        if call.input_location is not None:
            input_location = await asyncio.to_thread(
                self._check_input, call.input_location, call.role
            )
        inference_id = call.inference_id or str(uuid.uuid4())
        output, failure = locations(live.spec, config, inference_id, call)
        for location in (output, failure):
            self.policy.check_output(location)
        # Taken by a worker at once when its endpoint has room and nothing waits (no claim, no
        # read back); told once the row is durable, whether or not this caller still waits.
        runner, endpoint = self.runner, live.name
        direct = runner is not None and runner.admit(endpoint)

        def landed(made: QueuedInvocation | None) -> None:
            if runner is not None:
                runner.admitted(endpoint, made, direct)

        # Durable before the 202, in one transaction with whatever else is accepted meanwhile.
        row = await self.commits.enqueue(
            Enqueue(
                inference_id=inference_id,
                endpoint=live.name,
                ttl=call.ttl,
                timeout=call.timeout,
                output_location=output,
                failure_location=failure,
                input_location=input_location,
                body=call.body,
                request={
                    "ContentType": call.content_type,
                    "Accept": call.accept,
                    "CustomAttributes": call.custom_attributes,
                    "InputLocation": call.input_location,
                },
                running=direct,
            ),
            landed,
        )
        if runner is None:
            self.wake()
        return Accepted(row.inference_id, row.output_location, row.failure_location)

    def _endpoint(self, name: str) -> LiveEndpoint:
        live = self.table.get(name)
        if live is None:
            raise endpoint_not_found(name, self.account)
        if live.spec.async_inference is None:
            raise InvalidRequest(
                f"Endpoint {name} is not configured for asynchronous inference: its endpoint "
                "configuration has no AsyncInferenceConfig (a spec: no async_inference). Use "
                "InvokeEndpoint, or create it with an AsyncInferenceConfig."
            )
        routable(live.spec)
        return live

    def _check_input(self, location: str, role: str) -> str:
        """The input as the workers will read it: confined to the caller's roots, there, not
        too big."""
        checked = self.policy.check(location, role, self.table)
        try:
            size = self.storage.size(checked)
        except StorageError as exc:
            raise InvalidRequest(f"InputLocation {location!r}: {exc}") from None
        if size > self.max_bytes:
            raise InvalidRequest(
                f"InputLocation {location!r} is {size:,} bytes, over this gateway's limit of "
                f"{self.max_bytes:,} bytes for an asynchronous input (TANDEM_ASYNC_MAX_BYTES)."
            )
        return checked


def routable(spec: EndpointSpec) -> None:
    """Refuse an endpoint whose requests InvokeEndpointAsync cannot route, whatever the call.

    The operation has no TargetContainerHostname and no TargetModel (botocore's model of
    InvokeEndpointAsync), so a Direct endpoint, or a MultiModel container, would fail every
    request it queued: ``gateway.serving.dispatch.route`` says the same to InvokeEndpoint.
    """
    variants = spec.production()
    for variant in variants:
        where = f" (production variant {variant.variant})" if len(variants) > 1 else ""
        if variant.execution is Execution.DIRECT:
            raise InvalidRequest(
                f"Endpoint {spec.name}{where} uses Direct execution: a request needs the "
                "X-Amzn-SageMaker-Target-Container-Hostname header naming one of its containers "
                f"({', '.join(variant.hostnames)}), which InvokeEndpointAsync does not have (no "
                "TargetContainerHostname): use InvokeEndpoint."
            )
        for hostname, container in zip(variant.hostnames, variant.containers, strict=True):
            if container.mode is Mode.MULTI_MODEL:
                raise InvalidRequest(
                    f"Container {hostname} of endpoint {spec.name}{where} hosts many models: a "
                    "request needs the X-Amzn-SageMaker-Target-Model header naming one, which "
                    "InvokeEndpointAsync does not have (no TargetModel): use InvokeEndpoint."
                )


def locations(
    spec: EndpointSpec, config: AsyncInferenceSpec, inference_id: str, call: AsyncSubmission
) -> tuple[str, str]:
    """Where the answer and the failure go: ``{path}/{extension}/{name}.out`` / ``-error.out``.

    The name is the call's Filename, else the InferenceId when it is a safe file name, else a
    generated one; it is fixed at submit time, so a retry writes the same object.
    """
    extension = call.output_extension
    if extension is not None and any(p in (".", "..") for p in extension.split("/")):
        raise InvalidRequest(
            f"S3OutputPathExtension {extension!r} must not hold '.' or '..' path segments."
        )
    if call.filename is not None:
        name, stem = call.filename, call.filename
    else:
        stem = inference_id if _SAFE_NAME.match(inference_id) else str(uuid.uuid4())
        name = stem + OUTPUT_SUFFIX
    output_base = _resolve(spec, config.output_path)
    failure_base = _resolve(spec, config.failure_path) if config.failure_path else output_base
    # The name has no "/" (Filename's and a safe InferenceId's patterns): the folders are
    # joined once per base and extension, the name appended as text.
    return (
        _under(_folder(output_base, extension), name),
        _under(_folder(failure_base, extension), stem + FAILURE_SUFFIX),
    )


@functools.lru_cache(maxsize=1024)
def _folder(base: str, extension: str | None) -> str:
    """``join(base, extension)`` (normalised as ``join`` does): once per output path and
    extension, not per request."""
    return join(base, extension or "")


def _under(folder: str, name: str) -> str:
    """``join(folder, name)`` for a name without "/" and a folder ``_folder`` made."""
    if folder == ".":
        return name
    return f"{folder.rstrip('/')}/{name}"


#: ``spec.resolve`` of output paths, by the spec's folder and the path: once, not per submit.
_RESOLVED: dict[tuple[str, str], str] = {}


def _resolve(spec: EndpointSpec, location: str) -> str:
    key = (str(spec.source), location)
    found = _RESOLVED.get(key)
    if found is None:
        if len(_RESOLVED) > 1024:
            _RESOLVED.clear()
        found = _RESOLVED[key] = spec.resolve(location)
    return found
