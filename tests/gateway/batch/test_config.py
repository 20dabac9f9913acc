"""Batch settings: validation with precise messages, and where each setting comes from."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.batch.config import MB, BatchConfig, BatchStrategy, resolve
from gateway.batch.errors import ConfigError

BASE: dict[str, Any] = {
    "input": "in/",
    "output": "out/",
    "endpoint_url": "http://127.0.0.1:8080",
    "endpoint": "churn",
}


def build(**values: Any) -> BatchConfig:
    return BatchConfig.build(**{**BASE, **values})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_payload_mb": 101}, "max_payload_mb: Input should be less than or equal to 100"),
        ({"max_payload_mb": 20, "max_concurrent": 6}, "max_concurrent x max_payload_mb is 120 MB"),
        ({"split_type": "Lines"}, "split_type: Input should be 'None' or 'Line'"),
        ({"endpoint_url": None}, "give either spec"),
        ({"spec": "churn.yaml"}, "give either spec"),
        ({"endpoint": None}, "endpoint_url needs endpoint"),
        ({"endpoint": "bad_name"}, "endpoint: String should match pattern"),
        ({"input_filter": "$["}, "input_filter: JSONPath '$[' is not valid"),
        ({"join_source": "Input"}, "join_source=Input need content_type text/csv"),
        (
            {"join_source": "Input", "content_type": "text/csv", "split_type": "Line"},
            "needs assemble_with=Line",
        ),
        ({"accept": "csv"}, "accept: 'csv' is not a media type"),
        ({"retries": -1}, "retries: Input should be greater than or equal to 0"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(**values)
    assert message in str(info.value)


def test_defaults_follow_sagemaker() -> None:
    config = build()
    assert (config.timeout, config.retries, config.input_filter, config.output_filter) == (
        600.0,
        3,
        "$",
        "$",
    )
    plan = resolve(config, None)
    assert (plan.strategy, plan.max_payload_bytes, plan.concurrency) == (
        BatchStrategy.MULTI_RECORD,
        6 * MB,
        1,
    )
    assert set(plan.sources.values()) == {"default"}


def test_explicit_settings_win_then_the_container_then_defaults() -> None:
    params = {"MaxConcurrentTransforms": 8, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 10}
    plan = resolve(build(), params)
    assert (plan.strategy, plan.max_payload_bytes, plan.concurrency) == (
        BatchStrategy.SINGLE_RECORD,
        10 * MB,
        8,
    )
    assert set(plan.sources.values()) == {"container"}
    plan = resolve(build(batch_strategy="MultiRecord", max_concurrent=2), params)
    assert (plan.strategy, plan.concurrency, plan.sources["MaxPayloadInMB"]) == (
        BatchStrategy.MULTI_RECORD,
        2,
        "container",
    )


def test_a_container_wish_is_trimmed_to_the_100_mb_ceiling() -> None:
    plan = resolve(build(max_payload_mb=30), {"MaxConcurrentTransforms": 16})
    assert plan.concurrency == 3  # 3 x 30 MB <= 100 MB
    with pytest.raises(ConfigError, match=r"max_concurrent \(5\) x max_payload_mb \(30\)"):
        resolve(build(max_concurrent=5), {"MaxPayloadInMB": 30})


def test_junk_execution_parameters_are_ignored() -> None:
    plan = resolve(build(), {"MaxConcurrentTransforms": "lots", "BatchStrategy": 3})
    assert set(plan.sources.values()) == {"default"}
