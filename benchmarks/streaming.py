"""What streaming buys and what the gateway adds to it, measured in one run.

    .venv/bin/python benchmarks/streaming.py [--rounds 100] [--quick] [--container sklearn]

A container (tests/gateway/contract_server.py in its streaming mode) answers in 11 parts with
0.1 s between them: a whole answer takes over 1 s. It is called straight and through the gateway's
InvokeEndpointWithResponseStream route, the two alternating call after call on one kept-alive
client each; for each call the time to the first part and to the whole answer are taken (through
the gateway, a part is a decoded ``PayloadPart``). Figures are medians. Goals: the first part comes
long before the whole answer (that is the point of streaming) and the gateway adds at most 1 ms to
the first part. A call-to-call spread of tenths of a millisecond on a shared VM takes about a
hundred calls for the median to settle, hence the default. ``--quick`` makes 3 calls each: it
proves the script works.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gateway import free_port, gateway, process  # noqa: E402

PARTS = 11
PAUSE = 0.1
ADDED_FIRST_PART_MS = 1.0
#: The built-in scikit-learn container's user code for ``--container sklearn``: the same 11 parts.
STREAMING_CODE = f"""
import time


def transform_fn(model, body, content_type, accept):
    def parts():
        for index in range(1, {PARTS} + 1):
            if index > 1:
                time.sleep({PAUSE})
            yield b"%d:%s\\n" % (index, body)

    return parts(), "text/plain"
"""
TRAIN = """
import sys, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
X = np.random.default_rng(0).normal(size=(50, 2))
joblib.dump(LogisticRegression().fit(X, X[:, 0] > 0), sys.argv[1] + "/model.joblib")
"""


def straight(client: object, url: str) -> tuple[float, float, int]:
    """(seconds to the first part, to the whole answer, parts) calling the container."""
    import httpx

    assert isinstance(client, httpx.Client)
    started = time.perf_counter()
    first = 0.0
    parts = 0
    with client.stream("POST", f"{url}/invocations", content=b"x") as answer:
        for _chunk in answer.iter_raw():
            if not parts:
                first = time.perf_counter() - started
            parts += 1
    return first, time.perf_counter() - started, parts


def through(client: object, url: str) -> tuple[float, float, int]:
    """The same through the gateway, parts decoded from the event stream as boto3 decodes them."""
    import httpx
    from botocore.eventstream import EventStreamBuffer

    assert isinstance(client, httpx.Client)
    started = time.perf_counter()
    first = 0.0
    parts = 0
    path = f"{url}/endpoints/stream/invocations-response-stream"
    with client.stream("POST", path, content=b"x") as answer:
        assert answer.status_code == 200, answer.read()
        buffer = EventStreamBuffer()
        for chunk in answer.iter_raw():
            buffer.add_data(chunk)
            for message in buffer:
                assert message.headers[":event-type"] == "PayloadPart"
                if not parts:
                    first = time.perf_counter() - started
                parts += 1
    return first, time.perf_counter() - started, parts


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="calls per target")
    parser.add_argument("--quick", action="store_true", help="3 calls per target")
    parser.add_argument(
        "--container",
        choices=("contract", "sklearn"),
        default="contract",
        help="the standard-library contract server, or the built-in scikit-learn container "
        "(uvicorn) with a streaming transform_fn",
    )
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[tuple[float, float, int]]] = {"straight": [], "gateway": []}
    with (
        tempfile.TemporaryDirectory() as workdir,
        streaming_container(args.container, Path(workdir), port),
        gateway("httptools", {"stream": [url]}) as gw,
        httpx.Client(timeout=30) as direct,
        httpx.Client(timeout=30) as proxied,
    ):
        straight(direct, url)  # warm both paths: imports, first connections
        through(proxied, gw)
        for _ in range(rounds):
            results["straight"].append(straight(direct, url))
            results["gateway"].append(through(proxied, gw))
    report(results)


@contextlib.contextmanager
def streaming_container(kind: str, workdir: Path, port: int) -> Iterator[None]:
    """The container on ``port``, answering every call in PARTS parts PAUSE s apart."""
    env = {"SAGEMAKER_BIND_TO_PORT": str(port)}
    if kind == "contract":
        env |= {"CONTRACT_STREAM_PARTS": str(PARTS), "CONTRACT_STREAM_PAUSE": str(PAUSE)}
        server = [sys.executable, str(ROOT / "tests" / "gateway" / "contract_server.py")]
    else:
        model = workdir / "model"
        (model / "code").mkdir(parents=True)
        subprocess.run([sys.executable, "-c", TRAIN, str(model)], check=True)
        (model / "code" / "inference.py").write_text(STREAMING_CODE)
        env |= {"SM_MODEL_DIR": str(model), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
        server = [sys.executable, "-m", "containers", "serve", "--framework", "sklearn"]
    with process(server, env, f"http://127.0.0.1:{port}/ping"):
        yield


def report(results: dict[str, list[tuple[float, float, int]]]) -> None:
    medians = {}
    print(f"{'target':10} {'first part ms':>14} {'whole answer ms':>16} {'parts':>6}")
    for label, runs in results.items():
        first = statistics.median(r[0] for r in runs) * 1000
        whole = statistics.median(r[1] for r in runs) * 1000
        parts = min(r[2] for r in runs)
        medians[label] = (first, whole)
        print(f"{label:10} {first:14.3f} {whole:16.1f} {parts:6d}")
    added = medians["gateway"][0] - medians["straight"][0]
    share = medians["gateway"][0] / medians["gateway"][1]
    ok = added <= ADDED_FIRST_PART_MS
    print(
        f"gateway adds {added:.3f} ms to the first part (goal <= {ADDED_FIRST_PART_MS} ms: "
        f"{'met' if ok else 'NOT met'}); the first part comes at {share:.1%} of the whole answer"
    )


if __name__ == "__main__":
    main()
