"""What a client hears when its TargetModel cannot be served: one request fails, nothing else."""

from __future__ import annotations

from gateway.errors import ApiError, InvalidRequest, ModelError, ServiceUnavailable, truncate
from gateway.multimodel.model_store import StoreError, StoreUnavailable


def store_failed(target: str, hostname: str, exc: StoreError) -> ApiError:
    if isinstance(exc, StoreUnavailable):
        return ServiceUnavailable(
            f"Could not download model {target} for container {hostname}: {exc}. Try again later."
        )
    return InvalidRequest(f"Failed to download model data for target model {target}: {exc}.")


def load_failed(target: str, hostname: str, status: int, message: str) -> ModelError:
    original = truncate(message)
    kind = "client" if 400 <= status < 500 else "server"
    return ModelError(
        f"Failed to load model {target}: received {kind} error ({status}) from {hostname} "
        f'with message "{original}".',
        original_status=status,
        original_message=original,
    )


def no_room(target: str, hostname: str, message: str, limit: int) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Container {hostname} has no room for model {target} under its memory limit of "
        f"{limit >> 20} MiB: the models it holds are pinned or in use ({truncate(message, 300)}). "
        "Try again later."
    )


def unreachable(hostname: str, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Container {hostname} could not load a model ({type(exc).__name__}); it may be "
        "restarting. Try again later."
    )
