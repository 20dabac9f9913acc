"""``benchmarks/locustfile.py``: a locust user that invokes an endpoint, run when locust is here.

Locust is optional (``tandem loadtest`` needs none), and importing it monkey-patches the whole
process with gevent, so it never runs in the test process: the file is checked by its syntax tree,
and run by the ``locust`` command in a child process.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.ops.loadtest import MetricsSnapshot
from gateway.settings import GatewaySettings
from tests.gateway.harness import contract_servers, endpoint, serve
from tests.support import PYTHON, ROOT

LOCUSTFILE = ROOT / "benchmarks" / "locustfile.py"
USER_CLASSES = {"User", "HttpUser", "FastHttpUser"}


def _is_task(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Name) and target.id == "task"


def _invocation_paths(function: ast.FunctionDef) -> list[str]:
    """The paths of the ``self.client.post(...)`` calls in a task, ``{...}`` for each value."""
    paths = []
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "post"
            and ast.unparse(node.func.value) == "self.client"
            and node.args
        ):
            continue
        path = node.args[0]
        if isinstance(path, ast.JoinedStr):
            paths.append(
                "".join(
                    str(part.value) if isinstance(part, ast.Constant) else "{...}"
                    for part in path.values
                )
            )
        elif isinstance(path, ast.Constant):
            paths.append(str(path.value))
    return paths


def test_the_locustfile_defines_a_user_that_invokes_an_endpoint() -> None:
    source = LOCUSTFILE.read_text()
    compile(source, str(LOCUSTFILE), "exec")  # no syntax error, without importing locust
    tree = ast.parse(source)
    imported = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "locust"
        for alias in node.names
    }
    users = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and b.id in USER_CLASSES & imported for b in node.bases)
    ]
    assert users, "no locust User subclass"
    tasks = [
        item
        for user in users
        for item in user.body
        if isinstance(item, ast.FunctionDef) and any(map(_is_task, item.decorator_list))
    ]
    assert tasks, "no @task method"
    assert "task" in imported
    paths = [path for function in tasks for path in _invocation_paths(function)]
    assert "/endpoints/{...}/invocations" in paths, paths


@pytest.mark.slow
def test_locust_runs_headless_against_a_gateway(tmp_path: Path) -> None:
    if importlib.util.find_spec("locust") is None:  # not importorskip: that would monkey-patch
        pytest.skip("locust is not installed (pip install locust)")
    with contract_servers({"echo": {}}) as urls:
        runtime = endpoint(
            urls,
            name="churn",
            execution="Direct",
            containers=[{"hostname": "echo", "command": ["echo"]}],
        )
        settings = GatewaySettings(state_dir=tmp_path / "state")
        with serve(create_app([runtime], settings)) as url:
            stats = tmp_path / "stats"  # locust writes stats.json
            env = {**os.environ, "TANDEM_ENDPOINT": "churn", "TANDEM_TARGET_CONTAINER": "echo"}
            args = ["-f", str(LOCUSTFILE), "--host", url, "--headless", "-u", "2", "-r", "2"]
            args += ["-t", "3s", "--only-summary", "--json-file", str(stats)]
            result = subprocess.run(
                [PYTHON, "-m", "locust", *args],
                cwd=tmp_path,  # no locust.conf or pyproject settings of ours get picked up
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            seen = MetricsSnapshot(httpx.get(f"{url}/metrics").text).value(
                "tandem_invocations_total", endpoint="churn"
            )
    (row,) = json.loads((tmp_path / "stats.json").read_text())
    assert (row["method"], row["name"]) == ("POST", "/endpoints/churn/invocations")
    assert row["num_requests"] > 0 and row["num_failures"] == 0
    # Locust stops its users mid-request at the deadline: the gateway may have seen a few more.
    assert seen >= row["num_requests"]
