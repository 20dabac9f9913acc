"""Local model data: dirs, archives, file:// URLs unpack safely, atomically, only when changed."""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

from gateway.artifacts import ArtifactError, prepare_model_dir

CAP = 1024 * 1024


def make_model(folder: Path) -> Path:
    (folder / "code").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights" * 10)
    (folder / "code" / "inference.py").write_text("def model_fn(d):\n    return d\n")
    return folder


def tar_of(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def info(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    for key, value in fields.items():
        setattr(member, key, value)
    return member


def leftovers(parent: Path) -> list[str]:
    """Temporary or half-written entries next to the target."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_directory_is_copied_and_kept_when_unchanged(tmp_path: Path) -> None:
    source = make_model(tmp_path / "src")
    target = tmp_path / "state" / "model"
    prepare_model_dir(str(source), target, max_bytes=CAP)
    assert (target / "model.bin").read_bytes() == (source / "model.bin").read_bytes()
    assert (target / "code" / "inference.py").is_file()
    assert not target.is_symlink()

    (target / "sentinel").write_text("unchanged source: no copy")
    prepare_model_dir(str(source), target, max_bytes=CAP)
    assert (target / "sentinel").exists()

    (source / "model.bin").write_bytes(b"new weights, another size")
    prepare_model_dir(str(source), target, max_bytes=CAP)
    assert not (target / "sentinel").exists()
    assert (target / "model.bin").read_bytes() == b"new weights, another size"
    assert leftovers(target.parent) == []


def test_tar_gz_and_file_url(tmp_path: Path) -> None:
    source = make_model(tmp_path / "src")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    target = tmp_path / "state" / "model"
    prepare_model_dir(archive.as_uri(), target, max_bytes=CAP)
    assert (target / "model.bin").read_bytes() == (source / "model.bin").read_bytes()
    assert (target / "code" / "inference.py").read_text().startswith("def model_fn")


def test_no_model_data_gives_an_empty_dir(tmp_path: Path) -> None:
    target = prepare_model_dir(None, tmp_path / "model", max_bytes=CAP)
    assert target.is_dir() and not any(target.iterdir())


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("gs://bucket/model.tar.gz", "gs:// model_data is not supported yet"),
        ("s3:///model.tar.gz", "an s3:// URL needs a bucket"),
        ("ftp://host/model.tar.gz", "unknown URL scheme 'ftp'"),
        ("file://otherhost/model.tar.gz", "must name a local path"),
    ],
)
def test_unsupported_sources(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        prepare_model_dir(source, tmp_path / "model", max_bytes=CAP)
    assert not (tmp_path / "model").exists()


def test_missing_and_non_archive_sources(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such file or directory"):
        prepare_model_dir(str(tmp_path / "absent"), tmp_path / "model", max_bytes=CAP)
    plain = tmp_path / "model.joblib"
    plain.write_bytes(b"not an archive")
    with pytest.raises(ArtifactError, match=r"must be a directory or a \.tar\.gz archive"):
        prepare_model_dir(str(plain), tmp_path / "model", max_bytes=CAP)


Members = list[tuple[tarfile.TarInfo, bytes | None]]
UNSAFE: dict[str, tuple[Members, str]] = {
    "parent": ([(info("../escaped.txt"), b"x")], "would land outside the model dir"),
    "nested-parent": ([(info("ok/../../escaped.txt"), b"x")], "would land outside the model dir"),
    "absolute": ([(info("/tmp/tandem-absolute-escape.txt"), b"x")], "would land outside"),
    "symlink": ([(info("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)], "is a link"),
    "hardlink": ([(info("hard", tarfile.LNKTYPE, linkname="model.bin"), None)], "is a link"),
    "device": ([(info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None)], "device"),
    "fifo": ([(info("pipe", tarfile.FIFOTYPE), None)], "device or special file"),
    "bomb": ([(info("a.bin"), b"0" * (CAP // 2)), (info("b.bin"), b"0" * CAP)], "size cap"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    members, message = UNSAFE[case]
    # A harmless first member proves that a refusal midway removes what was already extracted.
    archive = tar_of(tmp_path / "bad.tar.gz", [(info("model.bin"), b"w"), *members])
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(ArtifactError, match=message) as raised:
        prepare_model_dir(str(archive), state / "model", max_bytes=CAP)
    assert str(archive) in str(raised.value)
    assert sorted(os.listdir(state)) == []  # no model dir, no temporary dir, no stamp
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/tandem-absolute-escape.txt").exists()


def test_failed_update_keeps_the_previous_model(tmp_path: Path) -> None:
    good = tar_of(tmp_path / "m.tar.gz", [(info("model.bin"), b"good")])
    target = tmp_path / "state" / "model"
    prepare_model_dir(str(good), target, max_bytes=CAP)
    tar_of(good, [(info("model.bin"), b"new"), (info("../evil"), b"x")])
    with pytest.raises(ArtifactError):
        prepare_model_dir(str(good), target, max_bytes=CAP)
    assert (target / "model.bin").read_bytes() == b"good"
    assert leftovers(target.parent) == []


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    archive = tar_of(tmp_path / "m.tar.gz", [(info("model.bin"), b"w" * 5000)])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cannot unpack"):
        prepare_model_dir(str(archive), tmp_path / "state" / "model", max_bytes=CAP)
    assert not (tmp_path / "state" / "model").exists()


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a gzip archive is read: through ISA-L, and through tarfile where isal is absent."""
    if request.param == "zlib":
        monkeypatch.setitem(sys.modules, "isal", None)  # import isal now raises ImportError
    return str(request.param)


def test_gzip_archives_unpack_the_same_either_way(tmp_path: Path, inflater: str) -> None:
    weights = os.urandom(300_000) + b"w" * 300_000
    archive = tar_of(
        tmp_path / "m.tgz",
        [
            (info("code", tarfile.DIRTYPE), None),
            (info("code/x.py"), b"x = 1\n"),
            (info("w"), weights),
        ],
    )
    target = prepare_model_dir(str(archive), tmp_path / "state" / "model", max_bytes=CAP)
    assert (target / "w").read_bytes() == weights
    assert (target / "code" / "x.py").read_text() == "x = 1\n"


def test_damaged_deflate_stream_is_a_clear_error(tmp_path: Path, inflater: str) -> None:
    # Text-like data, so the damage lands in Huffman-coded blocks and is caught by the CRC check
    # at the end of the gzip stream, which tarfile alone never reads.
    words = [os.urandom(4).hex().encode() for _ in range(500)]
    payload = b" ".join(words[i * 7919 % 500] for i in range(60_000))
    archive = tar_of(tmp_path / "m.tar.gz", [(info("model.bin"), payload)])
    data = bytearray(archive.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    archive.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"m\.tar\.gz: cannot unpack"):
        prepare_model_dir(str(archive), tmp_path / "state" / "model", max_bytes=CAP)
    assert not (tmp_path / "state" / "model").exists()
    assert leftovers(tmp_path / "state") == []


def test_a_stream_of_zeros_after_the_archive_is_refused(tmp_path: Path, inflater: str) -> None:
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        tar.addfile(info("model.bin", size=3), io.BytesIO(b"abc"))
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(gzip.compress(plain.getvalue() + bytes(CAP + 1)))
    with pytest.raises(ArtifactError, match="cannot unpack: more than 1048576 bytes after"):
        prepare_model_dir(str(archive), tmp_path / "state" / "model", max_bytes=CAP)
    assert not (tmp_path / "state" / "model").exists()


def test_directory_link_pointing_outside_is_refused(tmp_path: Path) -> None:
    source = make_model(tmp_path / "src")
    (source / "secrets").symlink_to(tmp_path)
    with pytest.raises(ArtifactError, match="secrets is a link pointing outside"):
        prepare_model_dir(str(source), tmp_path / "state" / "model", max_bytes=CAP)
    assert not (tmp_path / "state" / "model").exists()
