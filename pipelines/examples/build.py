"""Build the example models.

``python -m pipelines.examples.build [churn] [zoo] [--force] [--out DIR]`` writes each example's
artifacts to ``<out>/<example>/`` (default ``pipelines/examples/models/``, where the specs point).
An example is rebuilt only when an artifact is missing or its recipe changed since the last build
(a stamp holds a digest of the recipe's source), unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.examples import MODELS_DIR, _artifacts, churn, tenants, zoo


@dataclass(frozen=True)
class Example:
    name: str
    artifacts: tuple[str, ...]
    build: Callable[[Path], list[Path]]
    recipe: Path

    def digest(self) -> str:
        return _artifacts.source_digest([self.recipe, Path(_artifacts.__file__)])


EXAMPLES: dict[str, Example] = {
    "churn": Example("churn", churn.ARTIFACTS, churn.build, Path(churn.__file__)),
    "zoo": Example("zoo", zoo.ARTIFACTS, zoo.build, Path(zoo.__file__)),
    "tenants": Example("tenants", tenants.ARTIFACTS, tenants.build, Path(tenants.__file__)),
}


def is_built(name: str, out: Path = MODELS_DIR) -> bool:
    example = EXAMPLES[name]
    return _artifacts.is_current(out / name, example.artifacts, example.digest())


def ensure_built(
    names: Sequence[str] = tuple(EXAMPLES),
    out: Path = MODELS_DIR,
    *,
    force: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, list[Path]]:
    """Build the named examples that are missing or stale; return every artifact's path."""
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        raise ValueError(f"unknown example(s): {', '.join(unknown)} (known: {', '.join(EXAMPLES)})")
    paths: dict[str, list[Path]] = {}
    for name in names:
        example = EXAMPLES[name]
        folder = out / name
        if not force and is_built(name, out):
            log(f"{name}: up to date in {folder}")
        else:
            started = time.perf_counter()
            folder.mkdir(parents=True, exist_ok=True)
            example.build(folder)
            _artifacts.write_stamp(folder, example.digest())
            log(f"{name}: built in {time.perf_counter() - started:.1f}s -> {folder}")
        paths[name] = [folder / artifact for artifact in example.artifacts]
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.examples.build",
        description="Train the example models on synthetic data; write their model.tar.gz files.",
    )
    parser.add_argument(
        "examples",
        nargs="*",
        metavar="EXAMPLE",
        help=f"which to build: {', '.join(EXAMPLES)} (default: all)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument(
        "--out", type=Path, default=MODELS_DIR, help=f"output folder (default: {MODELS_DIR})"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.examples) - set(EXAMPLES))
    if unknown:
        parser.error(f"unknown example(s): {', '.join(unknown)} (known: {', '.join(EXAMPLES)})")
    ensure_built(
        args.examples or tuple(EXAMPLES),
        args.out,
        force=args.force,
        log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
