"""A real HTTP server standing in for a NotificationConfig topic: it records every POST.

It runs in a thread of the test on a free loopback port; ``fail_first`` makes its first answers
503, to show the gateway sends a message again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port, wait_until


@dataclass
class Delivery:
    path: str
    content_type: str | None
    body: dict[str, Any]


@dataclass
class Webhook:
    url: str
    fail_first: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    #: POSTs answered, the refused ones included.
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str) -> list[dict[str, Any]]:
        """The messages delivered (answered 200) to ``path``, in order."""
        with self.lock:
            return [d.body for d in self.deliveries if d.path == path]

    def wait(self, path: str, inference_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The message about ``inference_id`` delivered to ``path``."""

        def find() -> dict[str, Any] | None:
            found = [m for m in self.received(path) if m.get("inferenceId") == inference_id]
            return found[0] if found else None

        return wait_until(find, timeout=timeout, what=f"a message about {inference_id} at {path}")


@contextmanager
def webhook(fail_first: int = 0) -> Iterator[Webhook]:
    hook = Webhook(f"http://127.0.0.1:{free_port()}", fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                hook.posts += 1
                refuse = hook.posts <= hook.fail_first
                if not refuse:
                    kind = self.headers.get("Content-Type")
                    hook.deliveries.append(Delivery(self.path, kind, json.loads(raw)))
            self.send_response(503 if refuse else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    port = int(hook.url.rsplit(":", 1)[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
