"""A worker of a fleet: several workers, on one host or many, sharing the PostgreSQL ledger
(settings.yaml ``fleet:``, docs/fleet.md), with pgqueuer as the queue and its leases.

At each heartbeat a worker records that it is alive, then plans the buckets (app/worker/buckets.py)
of the windows starting within two heartbeats as queue jobs keyed by bucket: the queue keeps one
of each however many workers plan it. It takes buckets of its own location and location-free
ones, runs each target at its point of the interval and records each run once per (target,
slot, location): a bucket whose worker stopped heartbeating is taken again after ``fleet.lease``,
and what its first worker recorded is skipped.

The house duties (detectors, rollups, remediation, hypotheses, notifications, learning, taking in
the fleet's samples) are one more queue job, which never finishes while its worker runs: one
worker holds them, and the queue hands them to another worker when its heartbeats stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from pgqueuer import PsycopgDriver, Queries, QueueManager
from sqlalchemy import Engine

from app.worker import buckets
from app.worker.buckets import Bucket
from ledger import queries
from ledger.db import utcnow, write_session
from ledger.repo import fleet as roster
from policies.schema import FleetSettings
from probes.cycle import Run

log = logging.getLogger("workbench.worker")
HOUSE = "house"  # the entrypoint and dedupe key of the house duties' job


@dataclass(frozen=True)
class Member:
    """Who this worker is in the fleet: ``workbench worker --name --location [--probes-only]``."""

    name: str
    location: str
    house: bool = True  # may hold the house duties (a probes-only worker never does)
    host: str = socket.gethostname()
    pid: int = os.getpid()


def conninfo(engine: Engine) -> str:
    """libpq's URL of the ledger's PostgreSQL database, for the queue's own connections."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class FleetMember:
    def __init__(self, worker, member: Member, settings: FleetSettings):
        self.worker, self.member, self.settings = worker, member, settings
        self.started_at = utcnow()
        self.house = False
        self.stopping = asyncio.Event()
        self.running: dict[str, int] = {}  # bucket key -> its targets
        self.runs: deque[tuple[float, float]] = deque()  # (monotonic time, schedule lag) of recent runs
        self._connections: list[psycopg.AsyncConnection] = []
        self._queue_task: asyncio.Task | None = None
        self.joined = False
        self.planned_until = 0.0  # the windows starting before this are planned
        self._layout_cache, self._layout_of = None, None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleet")

    # --- joining and leaving ------------------------------------------------------------
    async def join(self) -> None:
        """Register in the ledger (a live worker of the same name refuses it), make sure the queue's
        tables are there, start taking buckets (and the house duties unless probes-only)."""
        await self._in_thread(self._write, roster.join, self._beat(), utcnow(), self.settings.dead_after)
        self.joined = True
        self.queries = Queries(PsycopgDriver(await self._connect()))
        async with self.queries.schema_lock():
            if not await self.queries.schema_is_installed():
                await self.queries.install()
        self.manager = QueueManager(Queries(PsycopgDriver(await self._connect())))
        for location in (buckets.ANYWHERE, self.member.location):
            self.manager.entrypoint(buckets.entrypoint(location))(self._bucket)
        if self.member.house:
            self.manager.entrypoint(HOUSE, concurrency_limit=1)(self._house)
        await self.plan()
        self._queue_task = asyncio.create_task(self.manager.run(
            batch_size=1, max_concurrent_tasks=self.settings.max_buckets, heartbeat_timeout=self.settings.lease,
            dequeue_timeout=self.settings.heartbeat))
        log.info("joined the fleet as %s in %s%s", self.member.name, self.member.location,
                 "" if self.member.house else " (probes only)")

    async def leave(self) -> None:
        """Hand back the house duties, finish the buckets in hand, and say so in the ledger."""
        self.stopping.set()
        if self._queue_task is not None:
            self.manager.shutdown.set()
            await self._queue_task
        if self.joined:
            await self._in_thread(self._write, roster.leave, self.member.name, utcnow())
        for conn in self._connections:
            await conn.close()
        self._thread.shutdown()
        log.info("left the fleet")

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(conninfo(self.worker.engine), autocommit=True)
        self._connections.append(conn)
        return conn

    async def _in_thread(self, call, *args):
        """``call(*args)`` in this worker's fleet thread: heartbeats never wait behind probe results."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    def _write(self, change, *args) -> None:
        with write_session(self.worker.engine, turns=False) as session:
            change(session, *args)

    # --- the heartbeat ------------------------------------------------------------------
    async def beat(self) -> None:
        """Say this worker is alive and what it did; plan the coming buckets; the holder of the
        house duties also raises the fleet finding of each worker gone silent."""
        await self._in_thread(self._write, roster.heartbeat, self._beat(), utcnow())
        await self.plan()
        if self.house:
            silent = await self._in_thread(self._silent)
            for name in silent:
                log.warning("worker %s stopped heartbeating: a fleet incident is open", name)

    def _silent(self) -> list[str]:
        with write_session(self.worker.engine) as session:
            return roster.raise_silent(session, utcnow(), self.settings.dead_after)

    def _beat(self) -> roster.Beat:
        window = self.settings.heartbeat.total_seconds() * 2
        now = time.monotonic()
        while self.runs and self.runs[0][0] < now - window:
            self.runs.popleft()
        lags = sorted(lag for _, lag in self.runs)
        return roster.Beat(
            name=self.member.name, location=self.member.location, host=self.member.host, pid=self.member.pid,
            started_at=self.started_at, house=self.house, buckets=len(self.running),
            targets=sum(self.running.values()), probes_per_second=round(len(lags) / window, 2),
            lag_p99_seconds=round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 3) if lags else 0.0,
            policy_digest=self.worker.holder.policy.digest[:12])

    async def plan(self) -> None:
        """Enqueue the buckets of the windows starting within two heartbeats that this worker has not
        planned yet, for the locations with a live worker, and the house duties' job; what another
        worker queued already stays as it is."""
        now = time.time()
        since, until = max(now, self.planned_until), now + 2 * self.settings.heartbeat.total_seconds()
        live = await self._in_thread(self._live_locations)
        planned = self._layout().plan(live, since, until - since, self.settings.bucket_size)
        entrypoints = [b.entrypoint for b in planned] + [HOUSE]
        payloads = [b.payload() for b in planned] + [None]
        delays = [timedelta(seconds=max(0.0, b.start(self._window(b)) - now)) for b in planned] + [None]
        keys = [b.key for b in planned] + [HOUSE]
        await self.queries.enqueue(entrypoints, payloads, [0] * len(keys), delays, keys, on_conflict="skip")
        self.planned_until = until

    def _layout(self) -> buckets.Layout:
        """The targets by bucket group, for the policy in force (built again after a reload)."""
        policy = self.worker.holder.policy
        if self._layout_of is not policy:
            self._layout_cache, self._layout_of = buckets.Layout(self.worker.enabled(), self.settings.window), policy
        return self._layout_cache

    def _window(self, bucket: Bucket) -> float:
        return min(self.settings.window.total_seconds(), bucket.interval)

    def _live_locations(self) -> set[str]:
        return queries.live_locations(self.worker.engine, utcnow() - self.settings.dead_after)

    # --- the work -----------------------------------------------------------------------
    async def _bucket(self, job) -> None:
        """Run the bucket's targets, each at its point of the slot; skip the runs recorded already
        (a bucket taken again), and those a whole interval late."""
        bucket = Bucket.from_payload(job.payload)
        targets = self._layout().members(bucket)
        self.running[bucket.key] = len(targets)
        try:
            run = Run(self.member.location, bucket.slot)
            done = await asyncio.to_thread(queries.recorded_runs, self.worker.engine,
                                           {t.name: run.key(t) for t in targets})
            await asyncio.gather(*(self._run_at(t, run) for t in targets if t.name not in done))
        finally:
            del self.running[bucket.key]

    async def _run_at(self, target, run: Run) -> None:
        due = run.slot + buckets.spread(target.name, target.interval).total_seconds()
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        lag = max(0.0, time.time() - due)
        if lag >= target.interval.total_seconds():
            log.warning("%s skipped the run of slot %d: %.0fs late", target.name, run.slot, lag)
            return
        self.runs.append((time.monotonic(), lag))
        self.worker.lag.observe(lag)
        await self.worker.run_target(target.name, run)

    async def _house(self, job) -> None:
        """Hold the house duties until this worker stops."""
        self.house = True
        log.info("holding the house duties")
        self.worker.schedule_house()
        try:
            await self.stopping.wait()
        finally:
            self.worker.unschedule_house()
            self.house = False

