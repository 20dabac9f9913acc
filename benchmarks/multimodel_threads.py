"""The TensorFlow thread check of ``benchmarks/multimodel.py``: one MultiModel TensorFlow
container, its threads counted after 1 and after ``count`` loaded models.

It shares only the client and the row width with the scikit-learn measurements (no gateway, no
tree store, a model of its own), so it lives apart from them; ``multimodel.py --tf-only`` runs it
alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.multimodel_support import FEATURES, ROOT, Client
from benchmarks.servers import free_port, wait_ready

#: Threads a TensorFlow container may gain between 1 and ``--tf-models`` models (a load pool's
#: worker or two), as in tests/gateway/multimodel/test_tensorflow_threads.py; more fails the run.
TF_THREAD_SLACK = 6


def tensorflow_threads(count: int, work: Path) -> bool:
    """Print the thread counts; false when ``count`` models added more than the slack."""
    try:
        import psutil
        import tensorflow as tf
    except ImportError as exc:
        print(f"\n== TensorFlow threads: skipped ({exc})")
        return True
    source = work / "tf" / "source"

    class Tiny(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(tf.ones((FEATURES, 1)))

        @tf.function(input_signature=[tf.TensorSpec((None, FEATURES), tf.float32)])
        def serve(self, x: Any) -> Any:
            return {"y": tf.matmul(x, self.w)}

    tiny = Tiny()
    tf.saved_model.save(tiny, str(source), signatures={"serving_default": tiny.serve})
    port = free_port()
    env = {
        **os.environ,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_BASE_DIR": str(work / "tf" / "opt-ml"),
        "TANDEM_CONTAINER_HOST": "127.0.0.1",
    }
    log = open(work / "tf.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "containers", "serve", "--framework", "tensorflow"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/ping", proc, timeout=180)
        client = Client("127.0.0.1", port)
        body = json.dumps({"instances": [[0.5] * FEATURES]}).encode()
        counts = {}
        started = time.perf_counter()
        for i in range(count):
            folder = work / "tf" / f"m{i}"
            shutil.copytree(source, folder)
            load = json.dumps({"model_name": f"m{i}", "url": str(folder)}).encode()
            client.conn.request("POST", "/models", body=load)
            answer = client.conn.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
            client.conn.request(
                "POST",
                f"/models/m{i}/invoke",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            answer = client.conn.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
            if i in (0, count - 1):
                counts[i + 1] = psutil.Process(proc.pid).num_threads()
        elapsed = time.perf_counter() - started
    finally:
        proc.kill()  # a graceful stop unloads every model first: slow with 1,000 of them
        proc.wait(timeout=60)
        log.close()
    grew = counts[count] - counts[1]
    print(
        f"\n== TensorFlow container threads: 1 model {counts[1]}, {count} models "
        f"{counts[count]} (+{grew}); {count} loads in {elapsed:.1f} s"
    )
    ok = grew <= TF_THREAD_SLACK
    print(f"  goal: at most +{TF_THREAD_SLACK} threads -> {'met' if ok else 'FAIL'}")
    return ok
