"""Malformed requests of every kind get a 4xx with a message, and no container restarts.

    python -m benchmarks.reliability.malformed [--rounds 3]

Each case is sent as raw bytes over its own connection (so that invalid UTF-8, broken framing and
huge headers reach the gateway as they are) to a real ``tandem serve`` of the scikit-learn
container with a tiny model. Afterwards the container's restart count must be unchanged, every
container healthy, and a valid request must still get the model's own prediction.
"""

from __future__ import annotations

import io
import json
import select
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.reliability.common import (
    ENDPOINT,
    gateway,
    parser,
    print_result,
    sklearn_model,
    workspace,
    write_result,
)

PATH = f"/endpoints/{ENDPOINT}/invocations"
TARGET = {"X-Amzn-SageMaker-Target-Container-Hostname": "model"}
JSON = {"Content-Type": "application/json", **TARGET}
CSV = {"Content-Type": "text/csv", **TARGET}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    chunks: tuple[bytes, ...]


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    framed = {k.lower() for k in headers or {}} & {"content-length", "transfer-encoding"}
    if method == "POST" and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def _npy_with_pickle() -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def cases() -> list[Case]:
    def post(name: str, body: bytes, headers: dict[str, str], path: str = PATH) -> Case:
        return Case(name, (request("POST", path, body, headers),))

    row = b"[[1, 2, 3, 4]]"
    chunk = b"a" * 65536
    chunked = request("POST", PATH, headers={**JSON, "Transfer-Encoding": "chunked"})
    bad_header = request("POST", PATH, row, {"Content-Type": "application/json"}).replace(
        b"\r\n\r\n", b"\r\nX-Amzn-SageMaker-Target-Container-Hostname: mod\xffel\r\n\r\n", 1
    )
    many_headers = b"GET /ping HTTP/1.1\r\nHost: gateway\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n"
    npy = {**TARGET, "Content-Type": "application/x-npy"}
    hostname = "X-Amzn-SageMaker-Target-Container-Hostname"
    return [
        post("bad JSON", b'{"instances": [[1, 2', JSON),
        post("JSON of the wrong shape (2 features, model wants 4)", b"[[1, 2]]", JSON),
        post("JSON of the wrong types (strings)", b'[["a", "b", "c", "d"]]', JSON),
        post("JSON object, not an array", b'{"x": 1}', JSON),
        post("empty JSON body", b"", JSON),
        post("bad CSV (ragged rows)", b"1,2,3,4\n1,2\n", CSV),
        post("CSV of the wrong types", b"a,b,c,d\n", CSV),
        post("invalid UTF-8 in a JSON body", b'[[1, 2, 3, "\xff\xfe"]]', JSON),
        post("invalid UTF-8 in a CSV body", b"\xff,\xfe,1,2\n", CSV),
        post(".npy that needs pickle", _npy_with_pickle(), npy),
        post("unsupported Content-Type", row, {**TARGET, "Content-Type": "image/png"}),
        post("unsupported Accept", row, {**JSON, "Accept": "image/png"}),
        Case("invalid UTF-8 in a header (target container)", (bad_header,)),
        post("invalid UTF-8 in the endpoint name", row, JSON, "/endpoints/%FF%FE/invocations"),
        post("unknown endpoint", row, JSON, "/endpoints/nope/invocations"),
        post("invalid endpoint name", row, JSON, "/endpoints/bad_name!/invocations"),
        post("no target container on a Direct endpoint", row, {"Content-Type": "application/json"}),
        post("unknown target container", row, {**JSON, hostname: "nope"}),
        post(
            "custom attributes over 1024 characters",
            row,
            {**JSON, "X-Amzn-SageMaker-Custom-Attributes": "a" * 2000},
        ),
        post(
            "inference id over 64 characters",
            row,
            {**JSON, "X-Amzn-SageMaker-Inference-Id": "i" * 65},
        ),
        Case("huge header (1 MiB)", (request("GET", "/ping", headers={"X-Big": "a" * MIB}),)),
        Case("many headers (20,000)", (many_headers,)),
        Case(
            "oversize body by Content-Length (7 MiB)",
            (request("POST", PATH, headers={**JSON, "Content-Length": str(7 * MIB)}), chunk),
        ),
        Case(
            "oversize chunked body (7 MiB)",
            (chunked, *(b"10000\r\n" + chunk + b"\r\n" for _ in range(7 * 16)), b"0\r\n\r\n"),
        ),
        Case("bad Content-Length", (request("POST", PATH, row, {**JSON, "Content-Length": "x"}),)),
        Case("not HTTP at all", (b"\x16\x03\x01\x02\x00 this is not HTTP\r\n\r\n",)),
        Case("unknown path", (request("GET", "/nope"),)),
        Case("wrong method", (request("GET", PATH),)),
    ]


def exchange(address: tuple[str, int], chunks: Iterable[bytes], timeout: float = 30.0) -> bytes:
    """Send ``chunks`` (stopping early once the gateway answers) and read its whole answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            received += data
        return received


def parse(answer: bytes) -> tuple[int, str, str]:
    """Status, x-amzn-ErrorType and the message of an HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    fields = (line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {name.lower(): value for name, value in fields}
    if headers.get("transfer-encoding") == "chunked":
        body = b"".join(_dechunk(body))
    text = body.decode("utf-8", "replace")
    try:
        message = str(json.loads(text).get("Message", text))
    except (ValueError, AttributeError):
        message = text
    return status, headers.get("x-amzn-errortype", ""), message.strip()


def _dechunk(body: bytes) -> Iterator[bytes]:
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            return
        yield rest[:size]
        body = rest[size + 2 :]


def run(rounds: int = 3, workdir: Path | None = None) -> dict[str, Any]:
    with workspace(workdir) as folder:
        model_dir, model = sklearn_model(folder / "model")
        containers = {"model": {"framework": "sklearn", "model_data": str(model_dir)}}
        with gateway(containers, folder) as served:
            split = urlsplit(served.url)
            address = (split.hostname or "127.0.0.1", split.port or 80)
            before = served.restarts()
            results = []
            for case in cases():
                answers = [parse(exchange(address, case.chunks)) for _ in range(rounds)]
                status, code, message = answers[0]
                results.append(
                    {
                        "case": case.name,
                        "status": status,
                        "error_type": code,
                        "message": message[:200],
                        "all_4xx_with_message": all(400 <= s < 500 and m for s, _, m in answers),
                    }
                )
            row = [[0.5, -0.25, 1.0, 2.0]]
            reply = httpx.post(f"{served.url}{PATH}", json=row, headers=TARGET, timeout=30)
            expected = model.predict(row).tolist()
            still_right = reply.status_code == 200 and json.loads(reply.content) == expected
            after = served.restarts()
            healthy = served.all_healthy()
            alive = served.proc.poll() is None
    bad = [r["case"] for r in results if not r["all_4xx_with_message"]]
    return {
        "check": "malformed",
        "cases": len(results),
        "rounds": rounds,
        "cases_not_4xx_with_message": bad,
        "restarts_before": before,
        "restarts_after": after,
        "healthy_after": healthy,
        "gateway_alive": alive,
        "valid_request_after": still_right,
        "results": results,
        "passed": not bad and before == after and healthy and alive and still_right,
    }


def main() -> None:
    args = parser(__doc__ or "", 0.0)
    args.add_argument("--rounds", type=int, default=3, help="times each case is sent")
    ns = args.parse_args()
    result = run(ns.rounds, workdir=ns.workdir)
    print_result("malformed", result)
    for row in result["results"]:
        print(
            f"  {row['status']} {row['error_type'] or '-':<22} {row['case']}: {row['message'][:70]}"
        )
    print(f"  -> {write_result('malformed', result)}")


if __name__ == "__main__":
    main()
