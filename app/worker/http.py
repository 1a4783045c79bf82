"""The worker's HTTP endpoints on 127.0.0.1: /healthz, /metrics and the Alertmanager webhook;
``serve`` runs them beside the scheduler until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from sqlalchemy import Engine

from app.worker.jobs import Worker
from ledger.db import utcnow
from ledger.samples import SampleStore
from policies.holder import PolicyHolder
from probes.ingest import authorized

log = logging.getLogger("workbench.worker")
DRAIN_LIMIT = 64 * 1024 * 1024


def _handler(worker: Worker):
    class Handler(BaseHTTPRequestHandler):
        server_version = "workbench-worker"

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "application/json", json.dumps(worker.health()).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_PLAIN_0_0_4, generate_latest(worker.registry))
            else:
                self._send(404, "text/plain", b"not found\n")

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/ingest/alertmanager":
                return self._send(404, "text/plain", b"not found\n")
            settings = worker.holder.policy.settings
            refusal = self._refusal(settings)
            if refusal:
                status, reason = refusal
                worker.ingested.labels("rejected").inc()
                self._drain()
                self.close_connection = True
                return self._send(status, "application/json", json.dumps({"error": reason}).encode())
            body = self.rfile.read(int(self.headers["Content-Length"]))
            result = worker.ingest(body)
            self._send(result.status, "application/json", json.dumps(result.body()).encode())

        def _drain(self) -> None:
            """Read and drop a refused body (within reason) so the client sees the answer, not a reset."""
            length = self.headers.get("Content-Length", "")
            left = min(int(length), DRAIN_LIMIT) if length.isdigit() else 0
            while left > 0:
                chunk = self.rfile.read(min(left, 65_536))
                if not chunk:
                    break
                left -= len(chunk)

        def _refusal(self, settings) -> tuple[int, str] | None:
            if not authorized(self.headers.get("Authorization"), os.environ.get(settings.ingest_token_env)):
                return 401, "missing or wrong bearer token"
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                return 411, "a Content-Length header is required"
            if int(length) > settings.ingest_max_bytes:
                return 413, f"body of {int(length)} bytes exceeds the limit of {settings.ingest_max_bytes}"
            return None

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every few seconds would flood the log
            pass

    return Handler


def serve(policy_dir: Path, engine: Engine, store: SampleStore, port: int | None = None) -> None:
    """Run the worker until SIGINT or SIGTERM."""
    holder = PolicyHolder(policy_dir, now=utcnow)
    worker = Worker(holder, engine, store)
    port = port or holder.policy.settings.worker_port
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(worker))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    log.info("serving /healthz and /metrics on http://127.0.0.1:%d", port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()
