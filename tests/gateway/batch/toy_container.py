"""A model container for batch tests, standard library only: it sums each row's numbers.

It speaks the container contract (``/ping``, ``/invocations``, ``/execution-parameters``), so it
runs behind a real ``tandem serve`` as ``command: [python, toy_container.py]``. Tests compute the
same ``predict`` in-process and compare. Configured by environment variables:

- ``SAGEMAKER_BIND_TO_PORT``: port (8080)
- ``TOY_SCALE``: factor applied to every prediction (1), so two containers answer differently
- ``TOY_EXEC_PARAMS``: JSON answered by ``/execution-parameters`` (404 when unset)
- ``TOY_SLEEP``: seconds to wait before each answer (0)
- ``TOY_FAIL_FIRST``: the first N invocations answer 503 (0)

Bodies: ``text/csv`` rows, or JSON lines (``application/json`` or ``application/jsonlines``) whose
documents are a list of numbers or an object with ``features``. Answers: CSV (one value per line)
for ``Accept: text/csv``, else ``{"predictions": [...]}``. A value that is not a number is a 400.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_lock = threading.Lock()
_calls = {"n": 0}


def predict(features: list[Any], scale: float = 1.0) -> float:
    """The model: the sum of the row's numbers, times the scale, rounded to keep text stable."""
    total = 0.0
    for value in features:
        try:
            total += float(value)
        except (TypeError, ValueError):
            raise ValueError(f"could not convert {value!r} to a number") from None
    return round(total * scale, 6)


def rows_of(body: bytes, content_type: str) -> list[list[Any]]:
    text = body.decode("utf-8")
    if content_type.startswith("text/csv"):
        return [row for row in csv.reader(text.splitlines()) if row]
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        rows.append(doc["features"] if isinstance(doc, dict) else doc)
    return rows


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        params = os.environ.get("TOY_EXEC_PARAMS")
        if self.path == "/ping":
            self._answer(200, b"")
        elif self.path == "/execution-parameters" and params:
            self._answer(200, params.encode(), "application/json")
        else:
            self._answer(404, b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            self._answer(404, b"not found")
            return
        with _lock:
            _calls["n"] += 1
            call = _calls["n"]
        time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
        if call <= int(os.environ.get("TOY_FAIL_FIRST", "0")):
            self._answer(503, b"warming up")
            return
        scale = float(os.environ.get("TOY_SCALE", "1"))
        content_type = self.headers.get("Content-Type") or "text/csv"
        try:
            predictions = [predict(row, scale) for row in rows_of(body, content_type)]
        except (ValueError, KeyError, TypeError) as exc:
            self._answer(400, str(exc).encode())
            return
        if (self.headers.get("Accept") or "").startswith("text/csv"):
            out = "".join(f"{p}\n" for p in predictions).encode()
            self._answer(200, out, "text/csv")
        else:
            self._answer(200, json.dumps({"predictions": predictions}).encode(), "application/json")


def main() -> None:
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
