"""SIGKILL the gateway with 100 requests queued and running, start it again: each ends once.

"Once" is checked on the objects: every accepted request has exactly one output or failure
object, no partial file is left, and an answer written before the kill is not written again
(same inode and mtime after the restart).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.gateway.asynchronous.conftest import files, gateway, spec, toy
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

REQUESTS = 100


def test_a_killed_gateway_answers_every_accepted_request_exactly_once(tmp_path: Path) -> None:
    out, failed = tmp_path / "out", tmp_path / "failed"
    specs = [
        spec(
            "slow",
            str(out),
            failure=str(failed),
            containers=[toy(CONTRACT_SLEEP=0.2)],
            async_fields={"max_concurrent_invocations_per_instance": 3},
        ),
        spec("broken", str(out), failure=str(failed), containers=[toy(CONTRACT_STATUS=500)]),
    ]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    accepted: dict[str, tuple[str, str, bytes]] = {}
    with gateway(tmp_path, specs, log_name="first.log") as first:
        for i in range(REQUESTS):
            data = f"{i},{i * 2}\n".encode()
            (inputs / f"{i}.csv").write_bytes(data)
            endpoint = "broken" if i % 10 == 9 else "slow"
            answer = first.invoke(endpoint, str(inputs / f"{i}.csv"), InferenceId=f"r{i:03d}")
            accepted[answer["InferenceId"]] = (
                answer["OutputLocation"],
                answer["FailureLocation"],
                data,
            )
        wait_until(lambda: len(files(out)) >= 10, timeout=60, what="some answers")
        first.proc.kill()  # SIGKILL, the gateway alone: its containers die with it
        first.proc.wait(timeout=30)
        rows = first.rows()
    statuses = [status for _, _, status, _ in rows]
    assert len(rows) == REQUESTS
    assert "Queued" in statuses, "everything had run before the kill"
    assert "Running" in statuses or statuses.count("Completed") < REQUESTS
    before = {name: os.stat(out / name) for name in files(out) if not name.startswith(".")}
    assert 0 < len(before) < REQUESTS

    with gateway(tmp_path, specs, port=free_port(), log_name="second.log") as second:

        def all_done() -> bool:
            return all(r[2] in ("Completed", "Failed") for r in second.rows())

        wait_until(all_done, timeout=180, what="every request to end")
        final = second.rows()

    assert len(final) == REQUESTS
    for inference_id, (output, failure, data) in accepted.items():
        written = [p for p in (Path(output), Path(failure)) if p.exists()]
        assert len(written) == 1, (inference_id, written)
        if inference_id.endswith("9"):  # the broken endpoint's
            assert written == [Path(failure)]
        else:
            assert written == [Path(output)]
            assert Path(output).read_bytes() == data
    expected = {Path(o).name for o, f, _ in accepted.values() if Path(o).exists()}
    assert files(out) == sorted(expected)  # no partial file left behind
    assert len(files(out)) + len(files(failed)) == REQUESTS
    for name, stat in before.items():  # written once: not rewritten after the restart
        now = os.stat(out / name)
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    by_id = {inference_id: (status, attempts) for _, inference_id, status, attempts in final}
    assert any(attempts > 1 for _, attempts in by_id.values())  # some did run twice-claimed
