"""What an InvokeEndpointAsync caller may name as its InputLocation, by its role.

A real ``tandem serve`` with API keys of both roles (``inv`` invokes, ``boss`` is admin) and
two asynchronous endpoints: ``a`` also captures its traffic. Issue 23's reproduction: an
invoke key naming the state database, or another endpoint's answers or captured data, was
accepted and the content sent through its own endpoint to its own output. Each row of the table
in docs/operations.md is checked here, for both roles: refused rows queue nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.state import FILENAME
from tests.gateway.asynchronous.conftest import Gateway, gateway, spec, wait_for_file

pytestmark = pytest.mark.slow

KEYS = {"invoke": "inv", "admin": "boss"}


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client root: beside the gateway's folder, which ``wide`` writes all over."""
    folder = tmp_path_factory.mktemp("public")
    (folder / "in.csv").write_text("public\n")
    return folder


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, public: Path) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("confine")
    (folder / "private.csv").write_text("private\n")
    capture = {"destination": str(folder / "a-capture"), "initial_sampling_percentage": 100}
    specs = [
        spec("a", str(folder / "a-out"), data_capture=capture),
        spec("b", str(folder / "b-out")),
        spec("wide", str(folder)),  # answers go to the folder that holds the state folder
    ]
    env = {
        "TANDEM_AUTH": "api-key",
        "TANDEM_API_KEYS": "inv,boss:admin",
        "TANDEM_INPUT_ROOTS": str(public),
        "TANDEM_MODEL_ROOTS": f"{folder},{public},s3://",
    }
    with gateway(folder, specs, env=env) as running_gateway:
        # Another tenant's data: an answer of ``a`` and a file of its capture folder.
        (folder / "a-out").mkdir(exist_ok=True)
        (folder / "a-out" / "secret.out").write_text("a's answer\n")
        (folder / "a-capture" / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a-capture" / "a" / "records.jsonl").write_text("{}\n")
        yield running_gateway


def submit(gw: Gateway, role: str, location: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/endpoints/b/async-invocations",
        headers={"X-Api-Key": KEYS[role], "X-Amzn-SageMaker-InputLocation": location},
        timeout=30,
    )


def locations(gw: Gateway, public: Path) -> dict[str, str]:
    folder = gw.state.parent
    return {
        "state database": str(gw.state / FILENAME),
        "state folder, as file://": f"file://{gw.state / FILENAME}",
        "state folder, climbed into": str(folder / "a-out" / ".." / "state" / FILENAME),
        "client root": str(public / "in.csv"),
        "model root only": str(folder / "private.csv"),
        "another endpoint's answers": str(folder / "a-out" / "secret.out"),
        "another endpoint's capture": str(folder / "a-capture" / "a" / "records.jsonl"),
        "outside every root": "/etc/hostname",
    }


#: (location, allowed for invoke, allowed for admin): the table of docs/operations.md.
TABLE = [
    ("state database", False, False),
    ("state folder, as file://", False, False),
    ("state folder, climbed into", False, False),
    ("client root", True, True),
    ("model root only", False, True),
    ("another endpoint's answers", False, True),
    ("another endpoint's capture", False, True),
    ("outside every root", False, False),
]


@pytest.mark.parametrize(("where", "invoke", "admin"), TABLE, ids=[row[0] for row in TABLE])
def test_who_may_name_which_location(
    gw: Gateway, public: Path, where: str, invoke: bool, admin: bool
) -> None:
    location = locations(gw, public)[where]
    for role, allowed in (("invoke", invoke), ("admin", admin)):
        before = gw.rows()
        answer = submit(gw, role, location)
        if allowed:
            assert answer.status_code == 202, (role, answer.text)
            gw.settled(answer.json()["InferenceId"])
        else:
            assert answer.status_code == 400, (role, answer.text)
            assert answer.headers["x-amzn-ErrorType"] == "ValidationError"
            assert "InputLocation" in answer.json()["Message"]
            assert gw.rows() == before, "nothing queued"


def test_an_invoke_key_reading_the_state_database_gets_nothing_of_it(gw: Gateway) -> None:
    """The reproduction: refused, and no output of ``b`` holds a byte of ``control.db``."""
    answer = submit(gw, "invoke", str(gw.state / FILENAME))
    assert answer.status_code == 400
    message = answer.json()["Message"]
    assert "state folder" in message or "TANDEM_INPUT_ROOTS" in message
    outputs = gw.state.parent / "b-out"
    written = [p.read_bytes() for p in outputs.rglob("*")] if outputs.exists() else []
    assert not any(b"SQLite format" in data for data in written)


@pytest.mark.parametrize("role", ["invoke", "admin"])
def test_no_answer_is_written_into_the_state_folder(gw: Gateway, role: str) -> None:
    before = gw.rows()
    answer = httpx.post(
        f"{gw.url}/endpoints/wide/async-invocations",
        headers={
            "X-Api-Key": KEYS[role],
            "X-Amzn-SageMaker-S3OutputPathExtension": "state/endpoints/b",
            "X-Amzn-SageMaker-Filename": "control.db",
        },
        content=b"1,2",
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert "state folder" in answer.json()["Message"]
    assert gw.rows() == before
    assert not (gw.state / "endpoints" / "b" / "control.db").exists()


def test_an_invoke_key_gets_its_answer_from_a_client_root(gw: Gateway, public: Path) -> None:
    answer = submit(gw, "invoke", str(public / "in.csv"))
    assert answer.status_code == 202
    output = Path(answer.headers["X-Amzn-SageMaker-OutputLocation"])
    assert wait_for_file(output) == b"public\n"  # the echo container answers its input
