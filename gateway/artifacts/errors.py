"""Why ``model_data`` could not become a model dir: each error names the source and the reason."""

from __future__ import annotations

from pipelines.errors import TandemError


class ArtifactError(TandemError):
    """``model_data`` cannot become a model dir; the message is ``<source>: <reason>``.

    ``source`` is what the user wrote (a URL, a path or a TargetModel), never a temporary path, so
    callers that already name the source (the model store) can show ``reason`` alone.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class MissingArtifact(ArtifactError):
    """Nothing at the source: no such file, object, prefix or bucket."""


class ArtifactDenied(ArtifactError):
    """The store refused us: no credentials, or credentials that may not read the object."""


class ArtifactUnavailable(ArtifactError):
    """The store did not answer (network, throttling, outage): worth a retry later."""
