"""The one fetch for model data, against a real S3 protocol server (moto) and local folders.

Folders, ``file://`` and ``s3://`` (an object or a prefix of files) all become the same model dir;
each failure names the URL and says whether the source is missing, access was denied or the store
did not answer; a damaged or malicious archive from S3 is refused and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from gateway.artifacts import (
    ArtifactDenied,
    ArtifactError,
    ArtifactUnavailable,
    Fetcher,
    MissingArtifact,
    locate,
    prepare_model_dir,
)
from tests.gateway.multimodel.archives import write_tar
from tests.gateway.s3server import CREDENTIALS, moto_s3
from tests.support import free_port

BUCKET = "fetch"
CAP = 1024 * 1024
FILES = {"model.bin": b"weights" * 10, "code/inference.py": b"def model_fn(d):\n    return d\n"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with moto_s3(tmp_path_factory.mktemp("moto"), BUCKET) as server:
        yield server


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials the server takes; no endpoint but the one a test names."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def put(client: Any, key: str, path: Path) -> str:
    client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    return f"s3://{BUCKET}/{key}"


def contents(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Temporary or half-written entries next to the target: downloads, unpacks, stamps."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("s3://b/m.tar.gz", "b", "m.tar.gz"),
        ("S3://b/p/", "b", "p/"),
        ("s3://b", "b", ""),
        ("s3://b/odd?name#1.tar.gz", "b", "odd?name#1.tar.gz"),  # S3 keys may hold both
    ],
)
def test_s3_urls_name_a_bucket_and_a_key(url: str, bucket: str, key: str) -> None:
    location = locate(url)
    assert (location.path, location.bucket, location.key) == (None, bucket, key)


def test_a_folder_a_file_url_and_s3_give_the_same_model_dir(
    tmp_path: Path, s3: tuple[str, Any]
) -> None:
    url, client = s3
    folder = tmp_path / "src"
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    archive = write_tar(tmp_path / "model.tar.gz", FILES)
    sources = [str(folder), archive.as_uri(), put(client, "same/model.tar.gz", archive)]
    for i, source in enumerate(sources):
        target = prepare_model_dir(
            source, tmp_path / "state" / str(i), max_bytes=CAP, s3_endpoint_url=url
        )
        assert contents(target) == FILES, source
    assert leftovers(tmp_path / "state") == []


def test_find_reads_each_kind_without_downloading(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    archive = write_tar(tmp_path / "model.tar.gz", FILES)
    put(client, "kinds/model.tar.gz", archive)
    put(client, "kinds/dir/model.bin", archive)
    fetcher = Fetcher(url)
    local = fetcher.find(locate(archive.as_uri()))
    assert local.location.path == archive and not local.prefix
    obj = fetcher.find(locate(f"s3://{BUCKET}/kinds/model.tar.gz"))
    assert obj.location.remote == f"{BUCKET}/kinds/model.tar.gz" and not obj.prefix
    assert json.loads(obj.stamp)["size"] == archive.stat().st_size
    assert json.loads(obj.stamp)["etag"]
    prefix = fetcher.find(locate(f"s3://{BUCKET}/kinds/dir/"))
    assert prefix.files == {"model.bin": archive.stat().st_size}


def test_an_s3_object_is_fetched_again_only_when_it_changes(
    tmp_path: Path, s3: tuple[str, Any]
) -> None:
    url, client = s3
    source = put(client, "changes/model.tar.gz", write_tar(tmp_path / "a.tar.gz", FILES))
    target = tmp_path / "state" / "model"
    prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
    (target / "sentinel").write_text("same ETag: no download")
    prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
    assert (target / "sentinel").exists()

    put(client, "changes/model.tar.gz", write_tar(tmp_path / "b.tar.gz", {"model.bin": b"v2"}))
    prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
    assert contents(target) == {"model.bin": b"v2"}
    assert leftovers(target.parent) == []


def test_an_s3_prefix_of_files_is_a_model_dir(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    for name, data in FILES.items():
        client.put_object(Bucket=BUCKET, Key=f"unpacked/{name}", Body=data)
    client.put_object(Bucket=BUCKET, Key="unpacked/code/", Body=b"")  # a console's folder marker
    client.put_object(Bucket=BUCKET, Key="unpacked-not/model.bin", Body=b"a neighbour")
    for i, source in enumerate([f"s3://{BUCKET}/unpacked/", f"s3://{BUCKET}/unpacked"]):
        target = tmp_path / "state" / str(i)
        prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
        assert contents(target) == FILES
        (target / "sentinel").write_text("unchanged prefix: no download")
        prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
        assert (target / "sentinel").exists()
    assert leftovers(tmp_path / "state") == []


def test_an_s3_prefix_over_the_size_cap_is_refused(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    client.put_object(Bucket=BUCKET, Key="huge/a.bin", Body=b"0" * 600)
    client.put_object(Bucket=BUCKET, Key="huge/b.bin", Body=b"0" * 600)
    state = tmp_path / "state"
    with pytest.raises(ArtifactError, match=r"s3://fetch/huge/: larger than the 1000-byte"):
        prepare_model_dir(f"s3://{BUCKET}/huge/", state / "m", max_bytes=1000, s3_endpoint_url=url)
    assert os.listdir(state) == []


@pytest.mark.parametrize(
    ("key", "reason"),
    [("absent.tar.gz", "no such object or prefix"), ("absent/", "no such object or prefix")],
)
def test_a_missing_object_names_the_url(
    tmp_path: Path, s3: tuple[str, Any], key: str, reason: str
) -> None:
    source = f"s3://{BUCKET}/{key}"
    with pytest.raises(MissingArtifact) as raised:
        prepare_model_dir(source, tmp_path / "model", max_bytes=CAP, s3_endpoint_url=s3[0])
    assert str(raised.value) == f"{source}: {reason}"
    assert os.listdir(tmp_path) == []


def test_a_missing_bucket_says_so(tmp_path: Path, s3: tuple[str, Any]) -> None:
    with pytest.raises(MissingArtifact, match=r"^s3://nobucket/m\.tar\.gz: no bucket 'nobucket'$"):
        prepare_model_dir(
            "s3://nobucket/m.tar.gz", tmp_path / "model", max_bytes=CAP, s3_endpoint_url=s3[0]
        )


def truncated(path: Path) -> Path:
    write_tar(path, {"model.bin": os.urandom(5000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def flipped(path: Path) -> Path:
    """Damage in the middle of the deflate stream, caught by the gzip trailer's checksum."""
    words = [os.urandom(4).hex().encode() for _ in range(500)]
    write_tar(path, {"model.bin": b" ".join(words[i * 7919 % 500] for i in range(60_000))})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))
    return path


def escaping(path: Path) -> Path:
    return write_tar(path, {"model.bin": b"w", "../../escaped.txt": b"owned"})


def linked(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member = tarfile.TarInfo("model.bin")
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(member)
    return path


DAMAGED = {
    "truncated": (truncated, "cannot unpack"),
    "flipped": (flipped, "cannot unpack"),
    "escaping": (escaping, "would land outside the model dir"),
    "link": (linked, "is a link"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_archive_from_s3_is_refused_and_leaves_nothing(
    tmp_path: Path, s3: tuple[str, Any], case: str
) -> None:
    url, client = s3
    make, reason = DAMAGED[case]
    source = put(client, f"damaged/{case}.tar.gz", make(tmp_path / "bad.tar.gz"))
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(ArtifactError, match=reason) as raised:
        prepare_model_dir(source, state / "model", max_bytes=CAP, s3_endpoint_url=url)
    assert str(raised.value).startswith(f"{source}: ")  # the URL, not the temporary file
    assert os.listdir(state) == []  # no download, no model dir, no temporary dir, no stamp
    assert not (tmp_path / "escaped.txt").exists()


def test_a_damaged_update_keeps_the_previous_model(tmp_path: Path, s3: tuple[str, Any]) -> None:
    url, client = s3
    source = put(client, "update/model.tar.gz", write_tar(tmp_path / "good.tar.gz", FILES))
    target = tmp_path / "state" / "model"
    prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
    put(client, "update/model.tar.gz", truncated(tmp_path / "bad.tar.gz"))
    with pytest.raises(ArtifactError, match="cannot unpack"):
        prepare_model_dir(source, target, max_bytes=CAP, s3_endpoint_url=url)
    assert contents(target) == FILES
    assert leftovers(target.parent) == []


@pytest.mark.slow  # s3fs retries before it gives up
def test_an_unreachable_store_is_unavailable(tmp_path: Path) -> None:
    source = f"s3://{BUCKET}/model.tar.gz"
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        ArtifactUnavailable, match=rf"^{source}: cannot reach the store: .*{nobody}"
    ):
        prepare_model_dir(source, tmp_path / "model", max_bytes=CAP, s3_endpoint_url=nobody)
    assert os.listdir(tmp_path) == []


def test_a_refused_key_is_access_denied(tmp_path: Path) -> None:
    # This server checks every request's credentials, and knows none.
    strict = moto_s3(tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    denied = pytest.raises(ArtifactDenied, match=r"^s3://fetch/m\.tar\.gz: access denied")
    with strict as (url, _), denied:
        prepare_model_dir(
            f"s3://{BUCKET}/m.tar.gz", tmp_path / "model", max_bytes=CAP, s3_endpoint_url=url
        )


def test_no_credentials_is_access_denied(
    tmp_path: Path, s3: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    nothing = tmp_path / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nothing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nothing))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ArtifactDenied, match="no AWS credentials found"):
        prepare_model_dir(
            f"s3://{BUCKET}/m.tar.gz", tmp_path / "model", max_bytes=CAP, s3_endpoint_url=s3[0]
        )


def test_without_an_endpoint_botocore_settings_apply(
    tmp_path: Path, s3: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``tandem compose`` and ``tandem k8s --unpack-models`` rely on: AWS's own variable."""
    url, client = s3
    source = put(client, "deploy/model.tar.gz", write_tar(tmp_path / "m.tar.gz", FILES))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    target = prepare_model_dir(source, tmp_path / "state" / "model", max_bytes=CAP)
    assert contents(target) == FILES
