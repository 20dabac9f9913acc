"""One invocation, whichever way it came in: the data plane's one use case.

``Invocations.invoke`` (a whole answer) and ``Invocations.stream`` (an answer in parts) run the
same sequence for the real-time route, the response stream, the asynchronous workers and the
shadow copies: the endpoint by name → the variant (``choose_variant``) → the instance
(``choose_instance``) → counted in flight → the body read → dispatched (Direct, Serial,
MultiModel: ``gateway.serving.dispatch``) → counted out → recorded once (``Recorder.finished``)
→ answered → copies offered to data capture and the shadows. The callers keep only what is
theirs: reading the body (``read``) and answering (``respond``) in their own wire format.

A variant at zero instances costs the others one test of its list of instances: its requests
wait in ``gateway.serving.held`` while the autoscaling side starts one (``_hold``).
"""

from __future__ import annotations

import bisect
import logging
import random
import re
import time
import weakref
from collections.abc import Awaitable, Callable

from gateway.calls import Call, ClientGone, InvocationRequest, Recorder
from gateway.errors import (
    ApiError,
    InternalFailure,
    InvalidRequest,
    Throttling,
    endpoint_not_found,
)
from gateway.live import EndpointTable, Instance, LiveEndpoint, Variant
from gateway.routing import InUse, Router
from gateway.serving.dispatch import Dispatcher
from gateway.serving.held import Held, HeldFull, component_key, variant_key
from gateway.serving.shadows import ShadowSender
from gateway.serving.streamed import Streamed
from pipelines.spec import NAME_PATTERN

log = logging.getLogger("tandem.gateway")

_NAME = re.compile(NAME_PATTERN)


#: How a caller hands the request in: ready, or read when its instance is chosen.
Read = InvocationRequest | Callable[[], Awaitable[InvocationRequest]]
Respond = Callable[[Call], Awaitable[None]]
#: A stream's answer: called with the ``Streamed`` answer while it streams, or with None once
#: the call failed before its head (``call.error``).
RespondStream = Callable[[Call, Streamed | None], Awaitable[None]]


def choose_variant(endpoint: LiveEndpoint, target: str | None) -> Variant:
    """The production variant a request goes to: ``target``, else a draw by weight (over the
    draw ``LiveEndpoint`` precomputed); an unknown ``TargetVariant`` names the known."""
    if target:
        for v in endpoint.variants:
            if v.name == target:
                return v
        known = ", ".join(v.name for v in endpoint.variants)
        raise InvalidRequest(
            f"Target variant {target} not found for endpoint {endpoint.name} "
            f"(its production variants: {known})."
        )
    if endpoint.only is not None:
        return endpoint.only
    if not endpoint.choices:
        raise InvalidRequest(COMPONENT_REQUIRED)
    point = random.random() * endpoint.total
    return endpoint.choices[bisect.bisect_right(endpoint.cumulative, point)]


def choose_fleet(endpoint: LiveEndpoint, target: str | None) -> LiveEndpoint:
    """While an update shifts traffic (``endpoint.shift``): the new fleet for its share of the
    draws, else the old; a ``TargetVariant`` only one of them has goes to that one."""
    shift = endpoint.shift
    if shift is None:
        return endpoint
    first, other = (shift.to, endpoint) if random.random() < shift.share else (endpoint, shift.to)
    missing = target and all(v.name != target for v in first.variants)
    return other if missing and any(v.name == target for v in other.variants) else first


#: SageMaker's answers about the ``X-Amzn-SageMaker-Inference-Component`` header.
COMPONENT_REQUIRED = (
    "Inference Component Name header is required for endpoints to which you plan to deploy "
    "inference components. Please include Inference Component Name header or consider using "
    "SageMaker models."
)
COMPONENT_NOT_ALLOWED = (
    "Inference Component Name header is not allowed for endpoints to which you dont plan to "
    "deploy inference components. Please remove the Inference Component Name header and try "
    "again."
)
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may "
    "be in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


def choose_component(endpoint: LiveEndpoint, name: str) -> Variant:
    """The copies of component ``name`` as a variant (chosen among by ``choose_instance``)."""
    component = endpoint.components.get(name)
    if component is None:
        if not endpoint.for_components:
            raise InvalidRequest(COMPONENT_NOT_ALLOWED)
        raise InvalidRequest(f"Inference Component {name} not found for Endpoint {endpoint.name}.")
    return component


#: Each variant's router, made on its first request and remade when its list of instances is
#: replaced (the count changed); it goes with the variant.
_ROUTERS: weakref.WeakKeyDictionary[Variant, Router[Instance]] = weakref.WeakKeyDictionary()


def choose_instance(
    variant: Variant, target: str | None = None, in_use: InUse[Instance] | None = None
) -> Instance:
    """The instance of ``variant`` that takes the next request, by its ``RoutingConfig``
    (``gateway.routing``: least outstanding requests by default, or random); a MultiModel
    request's ``target`` goes where ``in_use`` finds it loaded, within a bounded load.

    The one place an instance is chosen.
    """
    instances = variant.instances
    if len(instances) == 1:
        return instances[0]
    router = _ROUTERS.get(variant)
    if router is None or router.instances is not instances:
        keys = [i.deployment for i in instances]
        router = _ROUTERS[variant] = Router(instances, variant.spec.routing_strategy, keys)
    return router.choose(target, in_use)


class Invocations:
    """Runs invocations against the endpoints of ``table``; reports each one to ``recorder``."""

    def __init__(
        self,
        table: EndpointTable,
        dispatcher: Dispatcher,
        recorder: Recorder,
        shadows: ShadowSender,
        account: str = "000000000000",
        held: Held | None = None,
    ) -> None:
        """``account``: the one ``TANDEM_ACCOUNT`` names in "not found" messages, as in ARNs;
        ``held``: where requests to a variant at zero wait (default: 100 for 30 s each)."""
        self.account = account
        self.held = held if held is not None else Held(100, 30.0)
        self.table = table
        self.dispatcher = dispatcher
        self.recorder = recorder
        self.shadows = shadows

    def endpoint(self, name: str) -> LiveEndpoint:
        """The serving endpoint ``name``; unknown or invalid names are ``ValidationError``."""
        endpoint = self.table.get(name)
        if endpoint is not None:
            return endpoint
        if len(name) > 63 or not _NAME.match(name):
            raise InvalidRequest(
                f"1 validation error detected: Value '{name[:100]}' at 'endpointName' failed to "
                f"satisfy constraint: Member must satisfy regular expression pattern: "
                f"{NAME_PATTERN} and have length less than or equal to 63"
            )
        raise endpoint_not_found(name, self.account)

    async def invoke(
        self,
        name: str,
        target_variant: str | None,
        read: Read,
        respond: Respond | None = None,
        *,
        request_id: str = "",
        timeout: float | None = None,
        max_body: int | None = None,
        copies: bool = True,
        target_model: str | None = None,
        component: str | None = None,
    ) -> Call:
        """One invocation with a whole answer; ``respond`` answers it (error or not).

        ``timeout``/``max_body`` replace the endpoint's timeout and TANDEM_MAX_PAYLOAD for this
        call (an asynchronous request has its own). ``copies``: offer the request to data
        capture and the shadow variants once it is answered. ``target_model``: the MultiModel
        target when ``read`` is still to be read (the instance is chosen by it before the body
        is read). ``component``: the inference component the call names. Raises
        ``ClientGone``.
        """
        call = Call(time.perf_counter(), request_id)
        model = _target(read, target_model)
        admitted = self._admit(call, name, target_variant, model, component)
        if isinstance(admitted, Variant):
            admitted = await self._hold(call, admitted, model, component)
        if admitted:
            await self._run(call, read, None, timeout, max_body)
        if respond is not None:
            await respond(call)
        if copies and call.error is None and call.live is not None:
            self._offer_copies(call.live, call)
        return call

    async def stream(
        self,
        name: str,
        target_variant: str | None,
        read: Read,
        respond: RespondStream,
        request_id: str,
        target_model: str | None = None,
        component: str | None = None,
    ) -> Call:
        """One invocation answered in parts: ``respond`` runs while the container streams, or
        once with ``call.error`` set when the call failed before its head."""
        call = Call(time.perf_counter(), request_id)
        model = _target(read, target_model)
        admitted = self._admit(call, name, target_variant, model, component)
        if isinstance(admitted, Variant):
            admitted = await self._hold(call, admitted, model, component)
        if admitted:
            await self._run(call, read, respond, None, None)
        if not call.responded:
            await respond(call, None)
        return call

    def _admit(
        self,
        call: Call,
        name: str,
        target_variant: str | None,
        target_model: str | None,
        component: str | None = None,
    ) -> Variant | bool:
        """The endpoint, variant (or component) and instance (or copy) of ``call``; False with
        ``call.error`` set; the variant when it has no instance (at zero: the caller holds the
        request)."""
        try:
            live = self.table.get(name) or self.endpoint(name)
            if live.shift is not None:
                live = choose_fleet(live, target_variant)
            call.live = live
            if component is None:
                variant = choose_variant(live, target_variant)
            else:
                variant = choose_component(live, component)
            if not variant.instances:
                return variant
            call.instance = choose_instance(variant, target_model, self.dispatcher.in_use)
        except ApiError as exc:
            call.error = exc
            return False
        return True

    async def _hold(
        self, call: Call, variant: Variant, target_model: str | None, component: str | None = None
    ) -> bool:
        """A variant at zero instances (or a component at zero copies): hold ``call`` until
        one serves (``Held``), then admit it there; past TANDEM_HELD_WAIT, or past the held
        bound, ``Throttling`` (a component: SageMaker's no-capacity ``ValidationError``)."""
        assert call.live is not None
        name, wanted = call.live.name, variant.name
        key = variant_key(name, wanted) if component is None else component_key(component)
        what = f"Variant {wanted} of endpoint {name} has no instance"
        if component is not None:
            what = f"Inference component {component} of endpoint {name} has no copy"
        self.held.want(key)  # the autoscaling side starts an instance (or a copy) now
        deadline = time.monotonic() + self.held.wait_seconds
        while True:
            live = self.table.get(name)
            if live is None:
                call.error = endpoint_not_found(name, self.account)
                return False
            found = live.variant(wanted) if component is None else live.components.get(component)
            if found is None:
                call.error = (
                    endpoint_not_found(name, self.account)
                    if component is None
                    else InvalidRequest(
                        f"Inference Component {component} not found for Endpoint {name}."
                    )
                )
                return False
            if found.instances:
                call.live = live
                call.instance = choose_instance(found, target_model, self.dispatcher.in_use)
                return True
            if time.monotonic() >= deadline or self.held.closed:
                break
            try:
                await self.held.wait(key, deadline)  # then look again (deleted, or capacity)
            except HeldFull:
                call.error = Throttling(
                    f"{what} and already holds {self.held.limit} requests while one starts "
                    "(TANDEM_HELD_REQUESTS). Retry later."
                )
                return False
        if component is not None:
            call.error = InvalidRequest(NO_CAPACITY)
            return False
        why = (
            "the gateway is shutting down"
            if self.held.closed
            else f"none started within {self.held.wait_seconds:g} s (TANDEM_HELD_WAIT)"
        )
        call.error = Throttling(f"{what}: {why}. Retry later.")
        return False

    async def _run(
        self,
        call: Call,
        read: Read,
        stream_to: RespondStream | None,
        timeout: float | None,
        max_body: int | None,
    ) -> None:
        """In flight from here to the end, so a draining instance waits; recorded once."""
        instance = call.instance
        assert instance is not None
        instance.inflight += 1
        self.recorder.admitted(call)
        try:
            request = read if isinstance(read, InvocationRequest) else await read()
            call.request = request
            if stream_to is None:
                call.result = await self.dispatcher.invoke(
                    instance,
                    request,
                    call.timings,
                    timeout=timeout,
                    max_body=max_body,
                    reported=call.reported,
                )
            else:
                streaming = self.dispatcher.stream(instance, request, call.timings, call.reported)
                async with streaming as streamed:
                    call.responded = True
                    await stream_to(call, streamed)
        except ApiError as exc:
            call.error = exc
        except BaseException as exc:
            if isinstance(exc, ClientGone):
                call.gone = call.request is None
            elif call.error is None:
                call.error = InternalFailure("The invocation did not finish.")
            raise
        finally:
            instance.inflight -= 1
            if not call.gone:
                call.total = time.perf_counter() - call.started
                self.recorder.finished(call)

    def _offer_copies(self, live: LiveEndpoint, call: Call) -> None:
        """After the answer: data capture's sample and the shadows' copies (never waits)."""
        request, result, answered = call.request, call.result, call.instance
        assert request is not None and result is not None and answered is not None
        if live.shadows:
            for shadow in self.shadows.sampled(live):
                if not shadow.instances:
                    continue  # a shadow at zero gets no copy
                copy_to = choose_instance(shadow, request.target_model, self.dispatcher.in_use)
                self.shadows.spawn(self._copy(live, copy_to, request))
        capture = live.capture
        if capture is not None and capture.sampled():
            capture.offer(
                answered.variant,
                request.body,
                request.content_type,
                result.body,
                result.content_type,
                event_id=call.request_id,
                inference_id=request.inference_id,
                target_model=request.target_model,
            )

    async def _copy(
        self, live: LiveEndpoint, instance: Instance, request: InvocationRequest
    ) -> None:
        """One shadow copy: the same invocation, its answer dropped, its failure only counted."""
        call = Call(time.perf_counter(), live=live, instance=instance)
        try:
            await self._run(call, request, None, None, None)
        except Exception:  # a shadow's failure is counted, never a production request's
            log.exception("%s/%s: shadow copy failed", instance.name, instance.variant)


def _target(read: Read, target_model: str | None) -> str | None:
    """The MultiModel target the instance is chosen by: the request's own once it is read."""
    return read.target_model if isinstance(read, InvocationRequest) else target_model
