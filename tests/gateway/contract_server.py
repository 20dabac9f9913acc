"""A container that speaks the SageMaker contract with only the standard library: the tests' toy.

Tests run it as a process, alone or in a spec (``command: [python, contract_server.py]``), and the
docker tests bake it into their custom image (``docker/custom_image``). Configured by environment
variables:

- ``SAGEMAKER_BIND_TO_PORT``: port (8080); ``CONTRACT_HOST``: address (``127.0.0.1``)
- ``CONTRACT_MODE``: what ``/invocations`` answers:

  - ``echo`` (default): the body back; ``upper``: the body upper-cased
  - ``headers``: a JSON object of the request headers it received, names lower-cased
  - ``peer``: the client's port (shows whether connections are reused)
  - ``sum``: a model (:func:`predict`) for batch tests: CSV rows, or JSON lines whose documents are
    a list of numbers or an object with ``features``; it answers CSV (one value per line) for
    ``Accept: text/csv``, else ``{"predictions": [...]}``; a value that is not a number is a 400
  - ``whereami``: JSON saying where it runs (hostname, ``GREETING``, its arguments, the files of
    ``/opt/ml/model`` and whether it can write there) with the body; a body ``fetch URL`` makes it
    GET that URL first and report the status, which shows what it can reach on its network

- ``CONTRACT_MARKER``: appended to every answer (and to the custom attributes), so a chain's order
  shows in its output
- ``CONTRACT_STATUS``: status of ``/invocations`` answers (200); non-2xx answers carry
  ``CONTRACT_MESSAGE`` as body
- ``CONTRACT_FAIL_FIRST``: the first N invocations answer 503 (0)
- ``CONTRACT_SLEEP``: seconds to wait before answering ``/invocations``
- ``CONTRACT_BUSIEST``: a file kept holding the most ``/invocations`` this server ran at once
- ``CONTRACT_GATE``: a file that an invocation whose body starts with ``gate`` waits for (30 s at
  most) before answering: a request held as long as a test wants, with no timing
- ``CONTRACT_CONTENT_TYPE``: Content-Type of answers (default: the mode's, else the request's)
- ``CONTRACT_REPEAT``: the answer body repeated this many times (to make big payloads)
- ``CONTRACT_CHUNKED``: ``1`` to send answers with chunked transfer encoding (no Content-Length)
- ``CONTRACT_PING_STATUS``: status of ``/ping`` (200)
- ``CONTRACT_EXEC_PARAMS``: JSON answered by ``/execution-parameters`` (404 when unset)
- ``CONTRACT_SCALE``: factor of every ``sum`` prediction (1), so two containers answer differently
- ``CONTRACT_STREAM_PARTS``: answer in this many chunks (chunked encoding), part ``i`` being
  ``i:<body>\n``, instead of the mode's answer; ``CONTRACT_STREAM_PAUSE``: seconds between parts;
  ``CONTRACT_STREAM_FAIL_AFTER``: drop the connection after this many parts (no closing chunk);
  ``CONTRACT_STREAM_GATE``: a file to wait for (30 s at most) before producing the last part;
  ``CONTRACT_STREAM_MARKER``: a file written when the last part is produced

``GET /calls`` answers how many ``/invocations`` it has received (a shadow's share counts there).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_DIR = "/opt/ml/model"
_lock = threading.Lock()
_calls = {"n": 0}
_running = {"now": 0, "most": 0}


class BadBody(ValueError):
    """The body cannot be read as the mode expects: a 400."""


def predict(features: list[Any], scale: float = 1.0) -> float:
    """The ``sum`` model: the row's numbers summed, times the scale, rounded to keep text stable."""
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
    docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [doc["features"] if isinstance(doc, dict) else doc for doc in docs]


def writable(folder: str) -> bool | None:
    """Whether a file can be made in ``folder``; None when there is no such folder.

    The server runs as root in its image, which file modes do not stop: only a read-only mount
    says no.
    """
    if not os.path.isdir(folder):
        return None
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def where_am_i(body: bytes) -> bytes:
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
    return json.dumps(answer).encode()


def sums(body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    scale = float(os.environ.get("CONTRACT_SCALE", "1"))
    try:
        predictions = [predict(row, scale) for row in rows_of(body, content_type)]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadBody(str(exc)) from exc
    if accept.startswith("text/csv"):
        return "".join(f"{p}\n" for p in predictions).encode(), "text/csv"
    return json.dumps({"predictions": predictions}).encode(), "application/json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's pooled clients expect
    disable_nagle_algorithm = True  # headers and body are two writes; do not let them wait

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if os.environ.get("CONTRACT_CHUNKED") == "1":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 65536):
                chunk = body[start : start + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, status: int, text: str) -> None:
        self._answer(status, text.encode(), {"Content-Type": "text/plain"})

    def do_GET(self) -> None:
        params = os.environ.get("CONTRACT_EXEC_PARAMS")
        if self.path == "/ping":
            self._answer(int(os.environ.get("CONTRACT_PING_STATUS", "200")), b"")
        elif self.path == "/execution-parameters" and params:
            self._answer(200, params.encode(), {"Content-Type": "application/json"})
        elif self.path == "/calls":
            with _lock:
                calls = _calls["n"]
            self._answer(200, b"%d" % calls, {"Content-Type": "text/plain"})
        else:
            self._answer(404, b"not found")

    def do_POST(self) -> None:
        busiest = os.environ.get("CONTRACT_BUSIEST")
        with _lock:
            _running["now"] += 1
            if busiest and _running["now"] > _running["most"]:
                _running["most"] = _running["now"]
                with open(busiest, "w") as out:
                    out.write(str(_running["most"]))
        try:
            self._post()
        finally:
            with _lock:
                _running["now"] -= 1

    def _post(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            self._answer(404, b"not found")
            return
        with _lock:
            _calls["n"] += 1
            call = _calls["n"]
        time.sleep(float(os.environ.get("CONTRACT_SLEEP", "0")))
        if body.startswith(b"gate"):
            wait_for_file(os.environ.get("CONTRACT_GATE"))
        if call <= int(os.environ.get("CONTRACT_FAIL_FIRST", "0")):
            self._plain(503, "warming up")
            return
        status = int(os.environ.get("CONTRACT_STATUS", "200"))
        if not 200 <= status < 300:
            message = os.environ.get("CONTRACT_MESSAGE", f"failing with {status} on purpose")
            self._plain(status, message)
            return
        if os.environ.get("CONTRACT_STREAM_PARTS"):
            self._stream(body)
            return
        try:
            body, content_type = self._invoke(body)
        except BadBody as exc:
            self._plain(400, str(exc))
            return
        marker = os.environ.get("CONTRACT_MARKER", "")
        body = (body + marker.encode()) * int(os.environ.get("CONTRACT_REPEAT", "1"))
        headers = {}
        content_type = os.environ.get("CONTRACT_CONTENT_TYPE") or content_type
        if content_type:
            headers["Content-Type"] = content_type
        attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes + marker
        self._answer(200, body, headers)

    def _stream(self, body: bytes) -> None:
        """The streaming mode: one chunk per part, written as each is produced."""
        parts = int(os.environ["CONTRACT_STREAM_PARTS"])
        pause = float(os.environ.get("CONTRACT_STREAM_PAUSE", "0"))
        fail_after = int(os.environ.get("CONTRACT_STREAM_FAIL_AFTER", "-1"))
        gate = os.environ.get("CONTRACT_STREAM_GATE")
        marker = os.environ.get("CONTRACT_STREAM_MARKER")
        self.send_response(200)
        self.send_header("Content-Type", os.environ.get("CONTRACT_CONTENT_TYPE") or "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(1, parts + 1):
            if index == fail_after + 1:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if index > 1 and pause:
                time.sleep(pause)
            if index == parts:
                wait_for_file(gate)
                if marker:
                    with open(marker, "w") as f:
                        f.write("produced")
            chunk = b"%d:%s\n" % (index, body)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _invoke(self, body: bytes) -> tuple[bytes, str | None]:
        """The mode's answer and its Content-Type (None: the request's)."""
        mode = os.environ.get("CONTRACT_MODE", "echo")
        request_type = self.headers.get("Content-Type")
        if mode == "upper":
            return body.upper(), request_type
        if mode == "peer":
            return str(self.client_address[1]).encode(), request_type
        if mode == "headers":
            received = {k.lower(): v for k, v in self.headers.items()}
            return json.dumps(received).encode(), request_type
        if mode == "sum":
            return sums(body, request_type or "text/csv", self.headers.get("Accept") or "")
        if mode == "whereami":
            return where_am_i(body), "application/json"
        return body, request_type


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-answer (load generators do) is not worth a stack trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def wait_for_file(path: str | None, timeout: float = 30.0) -> None:
    """Until ``path`` exists (at most ``timeout`` seconds); at once when there is none."""
    deadline = time.monotonic() + timeout
    while path and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    if os.getpid() == 1:  # an image's entry point: PID 1 ignores SIGTERM unless it says otherwise
        signal.signal(signal.SIGTERM, stop)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = Server((os.environ.get("CONTRACT_HOST", "127.0.0.1"), port), Handler)
    print(f"contract server on port {port}, argv {sys.argv[1:]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
