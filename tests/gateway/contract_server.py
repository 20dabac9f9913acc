"""A container that speaks the SageMaker contract with only the standard library.

Configured by environment variables, so it can run as a test fixture or as a custom container in a
spec (``command: [python, tests/gateway/contract_server.py]``):

- ``SAGEMAKER_BIND_TO_PORT``: port (8080)
- ``CONTRACT_MODE``: ``echo`` (body back), ``upper`` (body upper-cased), ``headers`` (a JSON object
  of the request headers it received, names lower-cased), ``peer`` (the client's port: shows
  whether connections are reused)
- ``CONTRACT_MARKER``: appended to every answer (and to the custom attributes), so a chain's order
  shows in its output
- ``CONTRACT_STATUS``: status of ``/invocations`` answers (200); non-2xx answers carry
  ``CONTRACT_MESSAGE`` as body
- ``CONTRACT_SLEEP``: seconds to wait before answering ``/invocations``
- ``CONTRACT_CONTENT_TYPE``: Content-Type of answers (default: the request's)
- ``CONTRACT_REPEAT``: the answer body repeated this many times (to make big payloads)
- ``CONTRACT_CHUNKED``: ``1`` to send answers with chunked transfer encoding (no Content-Length)
- ``CONTRACT_PING_STATUS``: status of ``/ping`` (200)
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._answer(int(os.environ.get("CONTRACT_PING_STATUS", "200")), b"")
        else:
            self._answer(404, b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            self._answer(404, b"not found")
            return
        time.sleep(float(os.environ.get("CONTRACT_SLEEP", "0")))
        status = int(os.environ.get("CONTRACT_STATUS", "200"))
        if not 200 <= status < 300:
            message = os.environ.get("CONTRACT_MESSAGE", f"failing with {status} on purpose")
            self._answer(status, message.encode(), {"Content-Type": "text/plain"})
            return
        mode = os.environ.get("CONTRACT_MODE", "echo")
        if mode == "upper":
            body = body.upper()
        elif mode == "peer":
            body = str(self.client_address[1]).encode()
        elif mode == "headers":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        marker = os.environ.get("CONTRACT_MARKER", "")
        body = (body + marker.encode()) * int(os.environ.get("CONTRACT_REPEAT", "1"))
        headers = {}
        content_type = os.environ.get("CONTRACT_CONTENT_TYPE") or self.headers.get("Content-Type")
        if content_type:
            headers["Content-Type"] = content_type
        attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes + marker
        self._answer(200, body, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-answer (load generators do) is not worth a stack trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
