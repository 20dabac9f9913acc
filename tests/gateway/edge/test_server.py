"""The gateway's listening socket."""

from __future__ import annotations

import socket

import pytest

from gateway.edge.server import DEFER_ACCEPT_SECONDS, bind


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux only")
def test_new_connections_wake_the_gateway_once_their_request_is_in() -> None:
    with bind("127.0.0.1", 0) as sock:
        # The kernel rounds the seconds up to its retransmission steps: at least what was asked.
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) >= DEFER_ACCEPT_SECONDS
        with socket.create_connection(sock.getsockname()[:2]) as client:
            client.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            accepted, _ = sock.accept()  # the request is there: accept does not wait for it
            with accepted:
                assert accepted.recv(1024).startswith(b"GET /ping")
