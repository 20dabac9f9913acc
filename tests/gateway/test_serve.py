"""``tandem serve`` as users run it: a real gateway process, real containers, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import psutil
import yaml

from tests.gateway.processes import alive, shell
from tests.support import PYTHON, ROOT, free_port, running, wait_until

SERVE = [PYTHON, "-m", "gateway", "serve"]


def write_spec(folder: Path, name: str, **containers: dict[str, object]) -> Path:
    spec = {
        "name": name,
        "execution": "Direct",
        "containers": [{"hostname": h, **fields} for h, fields in containers.items()],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def serve_args(state: Path, port: int, *specs: Path) -> list[str]:
    return [*SERVE, *map(str, specs), "--state-dir", str(state), "--port", str(port)]


def demo_spec(folder: Path) -> Path:
    """Two containers; the first starts a child of its own, to prove that trees are stopped."""
    return write_spec(
        folder,
        "demo",
        a={"command": shell("echo hello from a; sleep 300 & exec $SERVER")},
        b={"command": shell("exec $SERVER"), "environment": {"CONTRACT_MODE": "upper"}},
    )


def run_serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_invalid_specs_exit_2_naming_file_field_and_rule(tmp_path: Path) -> None:
    good = write_spec(tmp_path, "good", a={"command": shell("touch started; exec $SERVER")})
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"name": "bad_name", "containers": [{"framework": "sklearn", "command": ["x"]}]}
        )
    )
    result = run_serve(serve_args(tmp_path / "state", free_port(), good, bad))
    assert result.returncode == 2, result.stderr
    assert f"{bad}: name: String should match pattern" in result.stderr
    assert f"{bad}: containers[0]: framework and command are exclusive" in result.stderr
    assert str(good) not in result.stderr
    assert not (tmp_path / "started").exists()
    assert not (tmp_path / "state" / "endpoints" / "good").exists()


def test_a_start_failure_exits_1_with_hostname_and_output(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "demo",
        ok={"command": shell("exec $SERVER")},
        broken={"command": shell("echo missing weights file >&2; exit 4")},
    )
    result = run_serve(serve_args(tmp_path / "state", free_port(), spec))
    assert result.returncode == 1, result.stderr
    assert "demo/broken: exited with code 4" in result.stderr
    assert "missing weights file" in result.stderr


def test_a_busy_port_fails_before_anything_starts(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "demo", a={"command": shell("touch started; exec $SERVER")})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_serve(serve_args(tmp_path / "state", taken.getsockname()[1], spec))
    assert result.returncode == 1, result.stderr
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert not (tmp_path / "started").exists()


def test_sigterm_serves_then_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    args = serve_args(tmp_path / "state", port, demo_spec(tmp_path))
    with running(args, url=url, log=log, timeout=60) as gateway:
        reply = httpx.post(
            f"{url}/endpoints/demo/invocations",
            content=b"hello",
            headers={
                "Content-Type": "text/plain",
                "X-Amzn-SageMaker-Target-Container-Hostname": "b",
            },
        )
        assert (reply.status_code, reply.content) == (200, b"HELLO")
        children = [p.pid for p in psutil.Process(gateway.pid).children(recursive=True)]
        assert len(children) >= 5  # two launchers, two containers, one grandchild

        second = run_serve(serve_args(tmp_path / "state", free_port(), demo_spec(tmp_path)))
        assert second.returncode == 1
        assert f"is in use by another tandem serve (pid {gateway.pid})" in second.stderr

        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=60) == 0
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=20, what="children gone")
    output = log.read_text()
    assert "demo/a | hello from a" in output
    assert "demo/a stopped" in output and "demo/b stopped" in output


def test_sigkill_to_the_gateway_leaves_no_process(tmp_path: Path) -> None:
    port = free_port()
    args = serve_args(tmp_path / "state", port, demo_spec(tmp_path))
    with running(args, url=f"http://127.0.0.1:{port}", timeout=60) as gateway:
        children = [p.pid for p in psutil.Process(gateway.pid).children(recursive=True)]
        assert len(children) >= 5
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=10)
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=20, what="children gone")


def test_sigterm_while_starting_stops_what_was_started(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "slow",
        a={
            "command": shell("echo booting; exec $SERVER"),
            "environment": {"CONTRACT_PING_STATUS": "503"},  # never healthy
        },
    )
    log = tmp_path / "gateway.log"
    with running(serve_args(tmp_path / "state", free_port(), spec), log=log) as gateway:
        container_log = tmp_path / "state" / "endpoints" / "slow" / "slow" / "a" / "container.log"
        wait_until(lambda: "booting" in container_log.read_text(), timeout=60, what="container up")
        children = [p.pid for p in psutil.Process(gateway.pid).children(recursive=True)]
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=60) == 0
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=20, what="children gone")
    assert "slow/a stopped" in log.read_text()
