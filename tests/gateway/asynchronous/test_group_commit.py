"""Group commit keeps its promise under a real SIGKILL: every request answered 202 during a burst
of concurrent submissions is durable, and is answered after the restart.

Clients submit inline bodies from many threads at once (so requests share commits); the gateway
is killed (SIGKILL, the whole process group) while they are still submitting. Each 202 the
clients got names a request that must end in its answer after the next start on the same state
folder, whatever group it was committed in; a request whose 202 never came may or may not be
there, but if its row is there it ends too.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.gateway.asynchronous.conftest import files, gateway, spec, toy
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

CLIENTS = 12


def test_every_202_of_a_burst_survives_a_sigkill_and_is_answered(tmp_path: Path) -> None:
    out = tmp_path / "out"
    specs = [
        spec(
            "burst",
            str(out),
            containers=[toy(CONTRACT_SLEEP=0.05)],
            async_fields={"max_concurrent_invocations_per_instance": 2},
        )
    ]
    accepted: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int, url: str) -> None:
        with httpx.Client(timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                inference_id = f"c{number}-{i}"
                body = f"{number},{i}\n".encode()
                try:
                    answer = http.post(
                        f"{url}/endpoints/burst/async-invocations",
                        content=body,
                        headers={
                            "X-Amzn-SageMaker-Inference-Id": inference_id,
                            "X-Amzn-SageMaker-Content-Type": "text/csv",
                        },
                    )
                except httpx.HTTPError:
                    return  # the gateway is gone: this one was never acknowledged
                assert answer.status_code == 202, answer.text
                with lock:
                    accepted[inference_id] = body

    with gateway(tmp_path, specs, log_name="first.log") as first:
        threads = [
            threading.Thread(target=client, args=(n, first.url), daemon=True)
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(accepted) >= 300, timeout=120, what="300 requests accepted")
        first.kill()  # SIGKILL while the clients are still submitting
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        rows = first.rows()
    queued = {inference_id for _, inference_id, _, _ in rows}
    assert set(accepted) <= queued  # every 202 was durable when it was sent
    assert any(status == "Queued" for _, _, status, _ in rows), "all had run before the kill"

    with gateway(tmp_path, specs, port=free_port(), log_name="second.log") as second:
        final = second.settled(timeout=300)
    assert {r[2] for r in final} == {"Completed"}
    for inference_id, body in accepted.items():
        assert (out / f"{inference_id}.out").read_bytes() == body
    assert not [name for name in files(out) if name.endswith(".partial")]
