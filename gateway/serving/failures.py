"""The errors an invocation fails with, made from what failed: factories, apart from the classes
(``gateway.errors``). Each message names the container, and in a Serial chain the step."""

from __future__ import annotations

import logging

from gateway.errors import ModelError, ServiceUnavailable, truncate
from gateway.live import ContainerRuntime

log = logging.getLogger("tandem.gateway")


def where(container: ContainerRuntime, step: tuple[int, int] | None) -> str:
    if step is None:
        return f"Container {container.hostname}"
    return f"Container {container.hostname} (step {step[0]} of {step[1]})"


def model_error(
    container: ContainerRuntime,
    step: tuple[int, int] | None,
    status: int,
    body: bytes,
    log_stream: str | None,
) -> ModelError:
    kind = "client" if 400 <= status < 500 else "server"
    original = truncate(body.decode("utf-8", errors="replace"))
    message = (
        f'Received {kind} error ({status}) from {container.hostname} with message "{original}".'
    )
    if step is not None:
        message += f" The failing step is {step[0]} of {step[1]} in the Serial pipeline."
    return ModelError(
        message, original_status=status, original_message=original, log_stream=log_stream
    )


def timed_out(
    container: ContainerRuntime, step: tuple[int, int] | None, log_stream: str | None
) -> ModelError:
    # SageMaker's observed form: a ModelError with original status 0 naming the slow container.
    original = (
        f"Your invocation timed out while waiting for a response from container "
        f"{container.hostname}. Review the latency metrics for each container, resolve the "
        "issue, and try again."
    )
    return model_error(container, step, 0, original.encode(), log_stream)


def unreachable(container: ContainerRuntime, exc: Exception) -> ServiceUnavailable:
    log.warning("container %s/%s unreachable: %s", container.endpoint, container.hostname, exc)
    return ServiceUnavailable(
        f"Container {container.hostname} of endpoint {container.endpoint} is not reachable; "
        "it may be restarting. Try again later."
    )
