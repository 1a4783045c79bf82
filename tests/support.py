"""Helpers the tests import: the checkout's root, free loopback ports, bounded polling, and
small HTTP servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, what: str, attempts: int = 300, pause: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` if it never does."""
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    pytest.fail(f"gave up waiting for {what}")

# Responses captured from real Prometheus 2.42, Alertmanager 0.25, blackbox-exporter and Loki 3.4.6.
SAMPLES = ROOT / "tests" / "samples"


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean and answers in one call."""

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LocalServer:
    """``handler`` served on 127.0.0.1 (a free port unless given) by a thread per request, until
    ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
