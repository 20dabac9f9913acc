"""Model artifacts: where model bytes come from, and how they become a model dir.

- ``fetch``: folders, ``file://`` and ``s3://`` (an object, or a prefix of files) behind one
  ``Fetcher``, for single-model containers and the MultiModel store alike;
- ``unpack``: defensive, atomic extraction of archives and copying of dirs;
- ``model_dir``: a single-model container's model dir, left alone when its source is unchanged;
- ``errors``: ``ArtifactError`` and its kinds (missing, access denied, store unavailable).
"""

from gateway.artifacts.errors import (
    ArtifactDenied,
    ArtifactError,
    ArtifactUnavailable,
    MissingArtifact,
)
from gateway.artifacts.fetch import Fetcher, Found, Location, locate, scratch_file
from gateway.artifacts.model_dir import prepare_model_dir
from gateway.artifacts.unpack import unpack

__all__ = [
    "ArtifactDenied",
    "ArtifactError",
    "ArtifactUnavailable",
    "Fetcher",
    "Found",
    "Location",
    "MissingArtifact",
    "locate",
    "prepare_model_dir",
    "scratch_file",
    "unpack",
]
