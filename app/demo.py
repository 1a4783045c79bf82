"""A small local service to watch, with a fault switch: none, errors, latency, down.

GET /            the service: 200, or the injected fault
GET /fault       the current fault as JSON
POST /fault      set it: ?mode=errors (or none, latency, down)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

MODES = ("none", "errors", "latency", "down")
LATENCY_S = 1.5
log = logging.getLogger("workbench.demo")


class DemoState:
    def __init__(self, mode: str = "none"):
        self.mode = mode
        self.requests = 0
        self.lock = threading.Lock()


def make_server(port: int, mode: str = "none") -> ThreadingHTTPServer:
    state = DemoState(mode)

    class Handler(BaseHTTPRequestHandler):
        server_version = "workbench-demo"

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/fault":
                return self._json(200, {"mode": state.mode, "requests": state.requests})
            with state.lock:
                state.requests += 1
                mode = state.mode
            if mode == "down":
                self.close_connection = True
                self.connection.close()  # no answer at all, as a dead backend looks
                return
            if mode == "latency":
                time.sleep(LATENCY_S)
            if mode == "errors":
                return self._json(503, {"status": "error", "detail": "injected fault: errors"})
            return self._json(200, {"status": "ok", "service": "demo"})

        def do_POST(self):
            url = urlsplit(self.path)
            if url.path != "/fault":
                return self._json(404, {"error": "not found"})
            mode = parse_qs(url.query).get("mode", [""])[0]
            if mode not in MODES:
                return self._json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            state.mode = mode
            log.info("fault set to %s", mode)
            return self._json(200, {"mode": mode})

        def _json(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def set_fault(port: int, mode: str) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}/fault", params={"mode": mode}, timeout=5, trust_env=False)
    response.raise_for_status()
    return response.json()["mode"]
