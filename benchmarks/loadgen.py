"""Load generation for benchmarks/gateway.py: wrk, or an aiohttp client in its own process."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float


@dataclass
class Target:
    label: str
    url: str
    body: bytes
    content_type: str
    concurrency: tuple[int, ...] = (1, 16)


# --- load generation ------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
Measure = Callable[[Target, int, float, Path], Load]


def wrk(target: Target, concurrency: int, duration: float, workdir: Path) -> Load:
    script = workdir / "post.lua"
    lua_body = "".join(f"\\{b}" for b in target.body)
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{lua_body}"\n'
        f'wrk.headers["Content-Type"] = "{target.content_type}"\n'
    )
    threads = 1 if concurrency == 1 else 2
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s"]
    out = subprocess.run(
        [*command, "--latency", "-s", str(script), target.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors while loading {target.url}:\n{out}")

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * _UNITS[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return Load(pct("50"), pct("99"), float(rps.group(1)))


def aiohttp_load(target: Target, concurrency: int, duration: float, workdir: Path) -> Load:
    """Fallback load generator: a child process, so it does not share this one's CPU time."""
    args = [sys.executable, __file__, target.url, target.body.hex(), target.content_type]
    out = subprocess.run(
        [*args, str(concurrency), str(duration)], capture_output=True, text=True, check=True
    ).stdout
    return Load(**json.loads(out))


def run_load(url: str, body: bytes, content_type: str, concurrency: int, duration: float) -> None:
    import asyncio

    import aiohttp

    async def main() -> Load:
        latencies: list[float] = []
        headers = {"Content-Type": content_type}
        async with aiohttp.ClientSession() as session:
            end = time.perf_counter() + duration

            async def worker() -> None:
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()
                        if r.status != 200:
                            raise SystemExit(f"{url} answered {r.status}")
                    latencies.append(time.perf_counter() - t)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return Load(
            latencies[len(latencies) // 2] * 1e3,
            latencies[int(len(latencies) * 0.99)] * 1e3,
            len(latencies) / elapsed,
        )

    print(json.dumps(asyncio.run(main()).__dict__))


if __name__ == "__main__":
    _, url, hexbody, ctype, conc, dur = sys.argv
    run_load(url, bytes.fromhex(hexbody), ctype, int(conc), float(dur))


def sequence(steps: list[tuple[str, bytes, str]], duration: float) -> Load:
    """One client calling ``steps`` (url, body, content type) one after another, for ``duration``.

    Each sample is the whole sequence; a one-step sequence is a plain concurrency-1 load. Raw
    keep-alive sockets, so the client's own cost stays small and alike for one step or three.
    """
    conns = []
    for url, body, content_type in steps:
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        conns.append((sock, head.encode() + body))
    latencies: list[float] = []
    end = time.perf_counter() + duration
    try:
        while time.perf_counter() < end:
            started = time.perf_counter()
            for sock, request in conns:
                sock.sendall(request)
                _read_answer(sock)
            latencies.append(time.perf_counter() - started)
    finally:
        for sock, _ in conns:
            sock.close()
    latencies.sort()
    return Load(
        latencies[len(latencies) // 2] * 1e3,
        latencies[int(len(latencies) * 0.99)] * 1e3,
        len(latencies) / duration,
    )


def _read_answer(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed mid-answer")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"answered {head.splitlines()[0]!r}")
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if match is None:
        raise SystemExit("answer without Content-Length")
    missing = int(match.group(1)) - len(rest)
    while missing > 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed mid-answer")
        missing -= len(chunk)
