"""A real local HTTP server with canned answers (captured from the real peers, in tests/samples/)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support import SAMPLES


class Canned:
    """Answers every request with ``status``/``body`` after ``delay`` seconds and records each
    request as (path, query pairs, headers)."""

    def __init__(self):
        self.status, self.body, self.delay = 200, b"[]", 0.0
        self.requests: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                canned.requests.append((url.path, parse_qsl(url.query), dict(self.headers)))
                time.sleep(canned.delay)
                try:
                    self.send_response(canned.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(canned.body)))
                    self.end_headers()
                    self.wfile.write(canned.body)
                except ConnectionError:  # the probe gave up first (timeout, body limit)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def reply(self, body: bytes | object, status: int = 200) -> None:
        """Answer with ``body``: bytes as they are, anything else as JSON."""
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def replay(self, sample: str, status: int = 200) -> None:
        """Answer with a captured sample from tests/samples/."""
        self.reply((SAMPLES / sample).read_bytes(), status)


@pytest.fixture
def canned():
    server = Canned()
    yield server
    server.server.shutdown()
    server.server.server_close()
