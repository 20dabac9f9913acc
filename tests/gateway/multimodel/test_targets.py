"""TargetModel validation and the safe names containers see."""

from __future__ import annotations

import pytest

from containers.registry import MODEL_NAME
from gateway.errors import InvalidRequest
from gateway.multimodel.targets import container_name, validate_target

GOOD = ["Houston_TX.tar.gz", "team/a/model-v2.tar.gz", "x", "a b.tar.gz", "é.tar.gz", "a" * 1024]
BAD = {
    "..": "'..'",
    "../secret.tar.gz": "'..'",
    "a/../../b": "'..'",
    "./a": "'.'",
    "/etc/passwd": "relative",
    "a//b": "empty path segments",
    "a/": "empty path segments",
    "%2e%2e/x": "URL-encoded",
    "a%2Fb": "URL-encoded",
    "a\x00b": "NUL",
    "a\nb": "control",
    "a\\..\\b": "'/'",
    "s3://bucket/key": "relative",
    "C:/x": "relative",
    "": "1 to 1024",
    "a" * 1025: "1 to 1024",
}


@pytest.mark.parametrize("target", GOOD)
def test_good_targets_pass(target: str) -> None:
    assert validate_target(target) == target


@pytest.mark.parametrize(("target", "why"), BAD.items())
def test_bad_targets_are_validation_errors(target: str, why: str) -> None:
    with pytest.raises(InvalidRequest, match="targetModel") as info:
        validate_target(target)
    assert why in info.value.message
    assert "\x00" not in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("target", [*GOOD, "../x", "a/b/c.tar.gz", "._-weird", "%00"])
def test_container_names_are_safe_for_the_container(target: str) -> None:
    name = container_name(target)
    assert MODEL_NAME.match(name) and "/" not in name and len(name) <= 64


def test_container_names_are_unique_and_stable() -> None:
    targets = ["a/m.tar.gz", "b/m.tar.gz", "a_m.tar.gz", "a/m.tar.gz "]
    names = {container_name(t) for t in targets}
    assert len(names) == len(targets)
    assert container_name("Houston_TX.tar.gz").startswith("Houston_TX.tar.gz-")
    assert container_name("x") == container_name("x")
