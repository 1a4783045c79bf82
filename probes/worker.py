"""The worker process: APScheduler runs every target on its interval; a small HTTP server on
127.0.0.1 answers /healthz and /metrics. The ledger is its only way to talk to the UI."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine

from ledger.db import utcnow
from ledger.queries import open_incident_counts
from policies.holder import PolicyHolder
from probes.context import ProbeContext, make_client
from probes.cycle import run_target
from probes.metrics import Counter, Gauge, Histogram, Registry

log = logging.getLogger("workbench.worker")
RELOAD_JOB = "policy-reload"


class Worker:
    def __init__(self, holder: PolicyHolder, engine: Engine):
        self.holder = holder
        self.engine = engine
        self.started = time.monotonic()
        self.scheduler: AsyncIOScheduler | None = None
        self.ctx: ProbeContext | None = None
        self.metrics = Registry()
        m = self.metrics
        self.runs = m.add(Counter("workbench_probe_runs_total", "Probe runs by target and kind.", ("target", "kind")))
        self.failures = m.add(Counter("workbench_probe_failures_total", "Failed probe runs by target.", ("target",)))
        self.duration = m.add(Histogram("workbench_probe_duration_seconds", "Probe duration by target.", ("target",)))
        self.lag = m.add(Histogram("workbench_schedule_lag_seconds", "Delay between a job's planned and actual start."))
        self.write = m.add(Histogram("workbench_ledger_write_seconds", "Time to commit one probe result to the ledger."))
        self.errors = m.add(Counter("workbench_cycle_errors_total", "Probe cycles that could not be recorded.", ("target",)))
        m.add(Gauge("workbench_open_incidents", "Open incidents by state.", ("state",),
                    lambda: {(state,): n for state, n in open_incident_counts(self.engine).items()}))
        m.add(Gauge("workbench_policy_valid", "1 when the policy files on disk are in force, 0 when rejected.", (),
                    lambda: {(): 0.0 if self.holder.error else 1.0}))
        m.add(Gauge("workbench_targets", "Targets scheduled.", (), lambda: {(): float(len(self._enabled()))}))

    # --- scheduling -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        settings = self.holder.policy.settings
        self.ctx = ProbeContext(make_client(settings.max_connections), max_body_bytes=settings.max_body_bytes)
        self.scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._schedule_targets()
        self.scheduler.add_job(self._reload, "interval", id=RELOAD_JOB,
                               seconds=settings.policy_reload_interval.total_seconds())
        self.scheduler.start()
        log.info("worker started: %d targets", len(self._enabled()))
        try:
            await stop.wait()
        finally:
            self.scheduler.shutdown(wait=False)
            await self.ctx.client.aclose()
            log.info("worker stopped")

    def _enabled(self):
        return [t for t in self.holder.policy.targets if t.enabled]

    def _schedule_targets(self) -> None:
        wanted = {t.name: t for t in self._enabled()}
        for job in self.scheduler.get_jobs():
            if job.id != RELOAD_JOB and job.id not in wanted:
                job.remove()
        for name, target in wanted.items():
            self.scheduler.add_job(
                self._run_target, "interval", args=[name], id=name, replace_existing=True,
                seconds=target.interval.total_seconds(), next_run_time=utcnow(),
                misfire_grace_time=max(1, int(target.interval.total_seconds())),
            )

    async def _reload(self) -> None:
        if self.holder.reload_if_changed():
            self.ctx.max_body_bytes = self.holder.policy.settings.max_body_bytes
            self._schedule_targets()

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.job_id != RELOAD_JOB and event.scheduled_run_times:
            self.lag.observe(max(0.0, (utcnow() - max(event.scheduled_run_times)).total_seconds()))

    async def _run_target(self, name: str) -> None:
        try:
            target = self.holder.policy.target(name)
        except KeyError:
            return
        try:
            outcome = await run_target(self.engine, target, self.ctx)
        except Exception:
            self.errors.inc(name)
            log.exception("could not record the probe of %s; it runs again next interval", name)
            return
        observation = outcome.observation
        self.runs.inc(name, target.kind)
        self.duration.observe(observation.duration_ms / 1000, name)
        self.write.observe(outcome.write_seconds)
        if not observation.ok:
            self.failures.inc(name)
        quiet = observation.ok and outcome.signal.value == "none"
        log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s%s", name, "ok" if observation.ok else "FAIL",
                outcome.signal.value, f": {observation.error}" if observation.error else "")

    # --- health -----------------------------------------------------------------------
    def health(self) -> dict:
        error = self.holder.error
        return {
            "status": "degraded" if error else "ok",
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            "targets": len(self._enabled()),
            "policy": {
                "directory": str(self.holder.directory),
                "loaded_at": self.holder.loaded_at.isoformat(),
                "in_force": "last good policy; the files on disk were rejected" if error else "files on disk",
                "errors": [str(p) for p in error.problems] if error else [],
            },
        }


def _handler(worker: Worker):
    class Handler(BaseHTTPRequestHandler):
        server_version = "workbench-worker"

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "application/json", json.dumps(worker.health()).encode())
            elif path == "/metrics":
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", worker.metrics.render().encode())
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every few seconds would flood the log
            pass

    return Handler


def serve(policy_dir: Path, engine: Engine, port: int | None = None) -> None:
    """Run the worker until SIGINT or SIGTERM."""
    holder = PolicyHolder(policy_dir, now=utcnow)
    worker = Worker(holder, engine)
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
