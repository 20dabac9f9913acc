"""CPU and memory discovery, settings and the frameworks by name, in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from containers import frameworks, resources
from containers.errors import FrameworkUnavailable
from containers.settings import ContainerSettings


def test_cpus_respect_affinity_and_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(resources, "cgroup_cpu_quota", lambda: None)
    assert resources.available_cpus() == affinity
    monkeypatch.setattr(resources, "cgroup_cpu_quota", lambda: 0.5)
    assert resources.available_cpus() == 1


def test_cgroup_v2_files_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resources, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(resources, "_own_cgroup_dirs", lambda: [tmp_path])
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.max").write_text("536870912\n")
    assert resources.cgroup_cpu_quota() == 1.5
    assert resources.memory_limit(None) == 512 * 1024 * 1024
    assert resources.memory_limit(64) == 64 * 1024 * 1024  # the env setting wins
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    assert resources.cgroup_cpu_quota() is None
    assert resources.memory_limit(None) is None


def test_thread_counts_take_the_override_else_share_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_cpus", lambda: 8)
    assert resources.thread_counts(0, 0) == (8, 8)
    assert resources.thread_counts(0, 0, workers=4) == (2, 2)
    assert resources.thread_counts(3, 1, workers=4) == (3, 1)


def test_per_thread_teams_share_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OpenMP-style teams, 8 predicting threads on 8 CPUs get one intra-op thread each."""
    monkeypatch.setattr(resources, "available_cpus", lambda: 8)
    assert resources.thread_counts(0, 0, callers=8) == (1, 8)
    assert resources.thread_counts(0, 0, callers=2) == (4, 8)
    assert resources.thread_counts(0, 0, workers=2, callers=2) == (2, 4)
    assert resources.thread_counts(3, 0, callers=8) == (3, 8)  # the env setting wins


def test_rss_and_tree_size(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 24)
    assert resources.tree_size(tmp_path) == 1024
    assert resources.rss() > 0


FRAGMENTED_HEAP = """
from containers import resources
blocks = [bytes(2000) + bytes([i % 256]) for i in range(50_000)]  # about 100 MB, glibc's malloc
kept = blocks[::64]
del blocks
before = resources.rss()
resources.trim_heap()
print(before, resources.rss())
"""


@pytest.mark.skipif(resources._malloc_trim() is None, reason="no glibc malloc_trim here")
def test_trimming_gives_a_fragmented_heap_back() -> None:
    """Freed blocks between kept ones stay resident until the heap is trimmed: an unloaded
    model's memory would still count against the container."""
    run = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    before, after = map(int, run.stdout.split())
    assert before - after > 50 * 2**20, (before, after)


def test_rss_of_another_process_and_of_one_gone() -> None:
    code = "import time; print('ready', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"  # started
        assert resources.rss(child.pid) > 1 << 20
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert resources.rss(child.pid) == 0


def test_settings_read_the_contract_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9001")
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "true")
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv; charset=utf-8")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", "/srv/ml")
    monkeypatch.setenv("SAGEMAKER_CONTAINER_LOG_LEVEL", "20")
    settings = ContainerSettings()
    assert (settings.port, settings.multi_model, settings.default_accept) == (
        9001,
        True,
        "text/csv",
    )
    assert settings.resolved_model_dir == Path("/srv/ml/model")
    assert settings.models_dir == Path("/srv/ml/models")
    assert settings.log_level == "info"
    assert settings.max_payload_bytes == 6 * 1024 * 1024
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "*/*")
    with pytest.raises(ValidationError, match="concrete media type"):
        ContainerSettings()


def test_frameworks_by_name_and_errors() -> None:
    with pytest.raises(FrameworkUnavailable, match="unknown framework 'mxnet'"):
        frameworks.framework_class("mxnet")
    pytest.importorskip("sklearn")
    assert frameworks.framework_class("sklearn").name == "sklearn"


def test_gateway_side_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, containers.app, containers.cli\n"
        "heavy = {'sklearn', 'torch', 'tensorflow'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
