"""The MultiModel fields of a container spec: sizes, preload, model_cache, where they are valid."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipelines.spec import ContainerSpec, ModelCache, parse_size

MULTI = {"framework": "sklearn", "mode": "MultiModel", "model_data": "s3://bucket/houses/"}


@pytest.mark.parametrize(
    ("value", "size"),
    [(512, 512 * 2**20), ("2GiB", 2 * 2**30), ("500MB", 500 * 10**6), (" 1.5 gib", 3 * 2**29)],
)
def test_sizes(value: Any, size: int) -> None:
    assert parse_size(value) == size
    assert ContainerSpec.model_validate({**MULTI, "memory_limit": value}).memory_limit == size


@pytest.mark.parametrize("value", ["lots", "2 parsecs", -1, 0, True, "GiB"])
def test_bad_sizes(value: Any) -> None:
    with pytest.raises(ValidationError, match="memory_limit"):
        ContainerSpec.model_validate({**MULTI, "memory_limit": value})


def test_every_field() -> None:
    spec = ContainerSpec.model_validate(
        {
            **MULTI,
            "disk_cache_limit": "10GiB",
            "preload": ["a.tar.gz", "team/b.tar.gz"],
            "model_cache": "Disabled",
            "load_wait_timeout": 5,
        }
    )
    assert spec.disk_cache_limit == 10 * 2**30 and spec.model_cache is ModelCache.DISABLED
    assert spec.preload == ["a.tar.gz", "team/b.tar.gz"] and spec.load_wait_timeout == 5


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"preload": ["../x.tar.gz"]}, "'..'"),
        ({"preload": ["a", "a"]}, "twice"),
        ({"model_cache": "Sometimes"}, "Enabled"),
        ({"load_wait_timeout": 0}, "greater than 0"),
        ({"model_data": "gs://bucket/x/"}, "folder, file:// or s3://"),
    ],
)
def test_bad_multi_model_fields(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        ContainerSpec.model_validate({**MULTI, **fields})


@pytest.mark.parametrize("field", ["memory_limit", "preload", "model_cache", "load_wait_timeout"])
def test_multi_model_fields_need_multi_model_mode(field: str) -> None:
    value = {"memory_limit": 100, "preload": ["a"], "model_cache": "Enabled"}.get(field, 3)
    with pytest.raises(ValidationError, match=f"{field}: only valid with mode: MultiModel"):
        ContainerSpec.model_validate({"framework": "sklearn", field: value})
