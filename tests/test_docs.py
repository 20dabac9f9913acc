"""The docs stay true to the tree: links resolve, cited paths and functions exist, settings listed.

The README is the front door (its first code block is the quickstart) and the reference lives in
``docs/``; code moves under them, so these checks fail when a page names what is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from containers.settings import ContainerSettings
from gateway.settings import GatewaySettings
from tests.support import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
CODE = [
    p for package in ("gateway", "containers", "pipelines") for p in (ROOT / package).rglob("*.py")
]
QUICKSTART = ["bash scripts/demo.sh", "bash scripts/test.sh"]
#: Folders a cited path may start with; the ones under GENERATED exist only after a build or run.
TOP = ("gateway", "containers", "pipelines", "benchmarks", "scripts", "tests", "deploy", "compose")
GENERATED = ("pipelines/examples/models", "compose/models", "benchmarks/.venv-mlserver")
_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_SPAN = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(rf"(?:{'|'.join(TOP)}|docs)/[\w./-]*|Dockerfile|pyproject\.toml")


def prose(page: Path) -> str:
    """The page without its fenced code blocks (their ``#`` lines are comments, not headings)."""
    return _FENCE.sub("", page.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(page).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            base = slug(match[1])
            name, n = base, 0
            while name in found:  # repeated headings get -1, -2 ...
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_SPAN.sub("", prose(page))):
        if re.match(r"[a-z]+:", target):  # http(s), mailto ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_cited_paths_exist(page: Path) -> None:
    spans = [s for s in _SPAN.findall(prose(page)) if _PATH.fullmatch(s)]
    missing = [s for s in spans if not s.startswith(GENERATED) and not (ROOT / s).exists()]
    assert missing == []


def test_readme_is_the_front_door() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 800
    first = re.search(r"^```\w*\n(.*?)^```", text, re.M | re.S)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first[1].splitlines()]
    assert [c for c in commands if c] == QUICKSTART
    linked = {Path(t.partition("#")[0]).name for t in _LINK.findall(prose(README))}
    assert {p.name for p in DOCS.glob("*.md")} <= linked  # the table of contents links every page


def test_the_request_walk_names_functions_that_exist() -> None:
    """Every row of the architecture page's tables: its files hold the functions it names."""
    rows = 0
    for line in prose(DOCS / "architecture.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        rows += 1
        files = [ROOT / f for f in _SPAN.findall(cells[1])]
        source = "\n".join(f.read_text(encoding="utf-8") for f in files)
        for name in _SPAN.findall(cells[2]):
            for part in name.split("."):
                defined = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(part)}\b"
                assert re.search(defined, source, re.M), f"row {cells[0]}: {part} not in {cells[1]}"
    assert rows >= 16


def test_every_setting_is_documented() -> None:
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    gateway = [f"TANDEM_{name.upper()}" for name in GatewaySettings.model_fields]
    assert [v for v in gateway if f"`{v}`" not in operations] == []
    contract = (DOCS / "contract.md").read_text(encoding="utf-8")
    names = [f.alias or name for name, f in ContainerSettings.model_fields.items()]
    assert [v for v in names if v != "log_level" and f"`{v}`" not in contract] == []


def test_the_architecture_page_names_methods_that_exist() -> None:
    """Every ``Class.method`` the page names is defined: the class, and the method in its file."""
    sources = [p.read_text(encoding="utf-8") for p in CODE]
    missing = []
    for name in set(_SPAN.findall(prose(DOCS / "architecture.md"))):
        if not re.fullmatch(r"[A-Z]\w*\.\w+", name):
            continue
        cls, method = name.split(".")
        if not any(
            re.search(rf"^class {cls}\b", src, re.M)
            and re.search(rf"^\s+(?:async\s+)?def {method}\b", src, re.M)
            for src in sources
        ):
            missing.append(name)
    assert sorted(missing) == []
