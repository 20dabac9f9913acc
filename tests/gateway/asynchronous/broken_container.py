"""A container that breaks off the requests it is told to: the body says how.

``crash...``: the process exits while the request runs (no answer at all); ``garbage...``: an
answer that is not HTTP, then the connection closes; anything else is echoed. Every invocation's
first line of body is appended to ``BROKEN_LOG``, so a test can count how often one was tried.
``/ping`` answers 200. Listens on ``SAGEMAKER_BIND_TO_PORT``.
"""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(os.environ["BROKEN_LOG"], "ab") as log:
            log.write(body.splitlines()[0] + b"\n" if body else b"\n")
        if body.startswith(b"crash"):
            os._exit(3)
        if body.startswith(b"garbage"):
            self.wfile.write(b"this is not HTTP at all\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", self.headers.get("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
