"""A custom image's server: the SageMaker contract with only the standard library.

``POST /invocations`` answers JSON saying where it runs (hostname, model files, whether it can
write to its model folder, the environment variable ``GREETING``, its arguments) and echoes the
body; a body ``fetch URL`` makes it GET that URL first and report the status, which shows what it
can reach on its network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_DIR = "/opt/ml/model"


def writable(folder: str) -> bool | None:
    """Whether a file can be made in ``folder``; None when there is no such folder.

    The server runs as root, which file modes do not stop: only a read-only mount says no.
    """
    if not os.path.isdir(folder):
        return None
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ping" else 404, b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            self._answer(404, b"")
            return
        answer: dict[str, object] = {
            "hostname": socket.gethostname(),
            "greeting": os.environ.get("GREETING"),
            "argv": sys.argv[1:],
            "model_files": sorted(os.listdir(MODEL_DIR)) if os.path.isdir(MODEL_DIR) else None,
            "model_dir_writable": writable(MODEL_DIR),
            "body": body.decode("utf-8", "replace"),
        }
        if body.startswith(b"fetch "):
            try:
                with urllib.request.urlopen(body[6:].decode(), timeout=5) as response:
                    answer["fetched"] = response.status
            except OSError as exc:
                answer["fetched"] = str(exc)
        self._answer(200, json.dumps(answer).encode())


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # as PID 1 it would otherwise ignore SIGTERM and wait for SIGKILL


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"custom server on port {port}, argv {sys.argv[1:]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
