"""Writing spec files and checking the problems ``load_spec`` reports, for the spec tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.spec import SpecError, load_spec

SKLEARN = {"framework": "sklearn", "model_data": "./model"}


def write(folder: Path, spec: Any, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec), encoding="utf-8")
    return path


def endpoint(**fields: Any) -> dict[str, Any]:
    return {"name": "ep", "containers": [dict(SKLEARN)], **fields}


def problems(folder: Path, spec: Any) -> list[str]:
    path = write(folder, spec)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value), "every problem names the file"
    return info.value.problems


def one_problem(folder: Path, spec: Any, field: str, *words: str) -> str:
    """Exactly one problem, naming the file, the field and the rule (``words``)."""
    found = problems(folder, spec)
    assert len(found) == 1, found
    path = str(folder / "spec.yaml")
    assert found[0].startswith(f"{path}: {field}: "), found[0]
    for word in words:
        assert word in found[0], (word, found[0])
    return found[0]
