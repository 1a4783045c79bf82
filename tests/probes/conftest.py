"""A raw TCP server on 127.0.0.1 for the http and tcp probes' tests: each connection goes to a
handler the test writes (hostile HTTP servers, line protocols). The HTTP server with canned
answers, ``canned``, is in tests/conftest.py."""

from __future__ import annotations

import socket
import threading

import pytest


class RawServer:
    """A TCP server on 127.0.0.1 handing each connection, in its own thread, to
    ``handle(conn, stop)``; ``stop`` is set when the test ends. With ``read_request`` the
    server first reads what the client sent (an HTTP request fits in one read), as an HTTP
    server would, so the handler only answers."""

    def __init__(self, handle, read_request: bool = False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.handle, self.read_request, self.stop = handle, read_request, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                if self.read_request:
                    conn.recv(65536)
                self.handle(conn, self.stop)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server():
    """raw_server(handle, read_request=False) -> a started RawServer, closed after the test."""
    servers = []

    def start(handle, read_request: bool = False):
        servers.append(RawServer(handle, read_request))
        return servers[-1]

    yield start
    for server in servers:
        server.close()

