"""The disk cache in-process: atomic fills from a folder store, LRU by size, safe unpacking."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.multimodel.cache import DiskCache, purge
from gateway.multimodel.model_store import BadArtifact, MissingModel, ModelStore
from tests.gateway.multimodel import archives


def model(store: Path, name: str, size: int) -> str:
    archives.write_tar(store / name, {"model.joblib": b"m" * size, "code/inference.py": b"#"})
    return name


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    (tmp_path / "store").mkdir()
    return ModelStore(str(tmp_path / "store"))


@pytest.fixture
def cache(tmp_path: Path) -> DiskCache:
    cache = DiskCache(tmp_path / "cache", limit=3000, max_model_bytes=10_000)
    cache.reset()
    return cache


def fill(cache: DiskCache, store: ModelStore, target: str) -> None:
    cache.add(cache.fill(target, store))


def test_fill_unpacks_into_a_folder_named_for_the_container(
    cache: DiskCache, store: ModelStore
) -> None:
    assert store.root is not None
    target = model(store.root, "team/Houston_TX.tar.gz", 1000)
    entry = cache.fill(target, store)
    assert entry.path.parent == cache.root and entry.path.name.startswith("Houston_TX.tar.gz-")
    assert (entry.path / "model.joblib").read_bytes() == b"m" * 1000
    assert entry.size == 1001
    assert sorted(p.name for p in cache.root.iterdir()) == [entry.path.name]  # no temp left


def test_reset_empties_the_folder_but_keeps_it(tmp_path: Path) -> None:
    # A container that already mounted the folder (docker backend) must see what lands in it.
    root = tmp_path / "cache"
    (root / "old-model" / "code").mkdir(parents=True)
    (root / "old-model" / "code" / "inference.py").write_text("#")
    (root / "stray.tmp").write_bytes(b"x")
    (root / "link").symlink_to(tmp_path)
    inode = root.stat().st_ino
    DiskCache(root, limit=3000, max_model_bytes=10_000).reset()
    assert root.stat().st_ino == inode
    assert list(root.iterdir()) == []
    assert tmp_path.exists()  # a link is removed, never followed


def test_least_recently_used_unprotected_entries_go_first(
    cache: DiskCache, store: ModelStore
) -> None:
    assert store.root is not None
    for name in ("a", "b", "c"):
        fill(cache, store, model(store.root, f"{name}.tar.gz", 999))
    assert cache.total == 3000
    assert cache.get("a.tar.gz") is not None  # a is now the most recently used
    fill(cache, store, model(store.root, "d.tar.gz", 999))
    removed = cache.shrink(protected={"b.tar.gz"})
    assert [target for target, _ in removed] == ["c.tar.gz"]
    assert all(path.name.startswith(".trash-") and path.exists() for _, path in removed)
    purge(path for _, path in removed)
    assert not any(path.exists() for _, path in removed)
    assert {e.target for e in cache.entries()} == {"a.tar.gz", "b.tar.gz", "d.tar.gz"}
    assert sorted(p.name for p in cache.root.iterdir() if p.name.startswith(".")) == []
    assert cache.total == 3000


def test_protected_entries_may_exceed_the_limit(cache: DiskCache, store: ModelStore) -> None:
    assert store.root is not None
    for name in ("a", "b", "c", "d"):
        fill(cache, store, model(store.root, f"{name}.tar.gz", 999))
    assert cache.shrink(protected={e.target for e in cache.entries()}) == []
    assert cache.total == 4000


def test_a_plain_folder_is_copied(cache: DiskCache, store: ModelStore) -> None:
    assert store.root is not None
    (store.root / "folder" / "code").mkdir(parents=True)
    (store.root / "folder" / "model.joblib").write_bytes(b"abc")
    entry = cache.fill("folder", store)
    assert (entry.path / "model.joblib").read_bytes() == b"abc"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (archives.escaping, "outside the model dir"),
        (archives.absolute, "outside the model dir"),
        (archives.with_link, "link"),
        (lambda p: archives.with_link(p, hard=True), "link"),
        (archives.with_device, "device"),
        (lambda p: archives.bomb(p, 50_000), "size cap"),
        (archives.corrupt, "cannot unpack"),
    ],
)
def test_malicious_or_broken_archives_are_refused_and_leave_nothing(
    cache: DiskCache, store: ModelStore, tmp_path: Path, make: object, why: str
) -> None:
    assert store.root is not None and callable(make)
    make(store.root / "evil.tar.gz")
    with pytest.raises(BadArtifact, match=why):
        cache.fill("evil.tar.gz", store)
    assert list(cache.root.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not (cache.root.parent / "escaped.txt").exists()
    assert not Path("/tmp/tandem-absolute.txt").exists()


def test_missing_models_and_links_out_of_the_store(
    cache: DiskCache, store: ModelStore, tmp_path: Path
) -> None:
    assert store.root is not None
    with pytest.raises(MissingModel, match="no model at"):
        cache.fill("nothing.tar.gz", store)
    outside = model(tmp_path, "outside.tar.gz", 10)
    (store.root / "inside.tar.gz").symlink_to(tmp_path / outside)
    with pytest.raises(MissingModel, match="inside the store"):
        cache.fill("inside.tar.gz", store)
    assert list(cache.root.iterdir()) == []
