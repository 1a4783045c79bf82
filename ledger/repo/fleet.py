"""The fleet's workers and what they send: each worker's heartbeat row, the one fleet finding a
silent worker raises (and its recovery), per-location threshold state, and the sample batches
waiting for the worker that holds the samples store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from ledger.errors import WorkerNameTaken
from ledger.repo import incidents
from ledger.repo.rows import get, locked_row
from ledger.tables import Finding, FleetWorker, LocationState, SampleBatch

FLEET_SERVICE = "workbench"


@dataclass(frozen=True)
class Beat:
    """What a worker says at each heartbeat."""

    name: str
    location: str
    host: str
    pid: int
    started_at: datetime
    house: bool = False
    buckets: int = 0
    targets: int = 0
    probes_per_second: float = 0.0
    lag_p99_seconds: float = 0.0
    policy_digest: str = ""


def join(session: Session, beat: Beat, now: datetime, dead_after: timedelta) -> None:
    """Register a worker at its start; a name another live process heartbeats under is refused."""
    row = session.get(FleetWorker, beat.name, with_for_update=True)
    if row is not None and row.stopped_at is None and (row.host, row.pid) != (beat.host, beat.pid) \
            and now - row.heartbeat_at < dead_after:
        raise WorkerNameTaken(f"a worker named {beat.name!r} is running on {row.host} (pid {row.pid}, last heartbeat "
                              f"{(now - row.heartbeat_at).total_seconds():.0f}s ago): give this one another --name")
    heartbeat(session, beat, now)


def heartbeat(session: Session, beat: Beat, now: datetime) -> None:
    """Record that the worker is alive and what it did; a worker back from silence resolves its finding."""
    row = session.get(FleetWorker, beat.name, with_for_update=True) or FleetWorker(
        name=beat.name, location=beat.location, host=beat.host, pid=beat.pid, started_at=beat.started_at,
        heartbeat_at=now)
    for name, value in vars(beat).items():
        setattr(row, name, value)
    row.heartbeat_at, row.stopped_at = now, None
    if row.dead_finding_id is not None:
        incidents.close_finding(session, get(session, Finding, row.dead_finding_id), now,
                                f"worker {beat.name} heartbeats again", "the worker is back")
        row.dead_finding_id = None
    session.add(row)


def leave(session: Session, name: str, now: datetime) -> None:
    """A worker stopping on purpose: it raises no finding."""
    row = session.get(FleetWorker, name, with_for_update=True)
    if row is not None:
        row.stopped_at, row.house, row.buckets, row.targets = now, False, 0, 0
        session.add(row)


def raise_silent(session: Session, now: datetime, dead_after: timedelta, severity: str = "warning") -> list[str]:
    """Open one finding for each worker silent for ``dead_after`` that did not stop on purpose and
    has none open yet; the names of the workers it was raised for."""
    silent = session.exec(
        select(FleetWorker).where(col(FleetWorker.heartbeat_at) < now - dead_after,
                                  col(FleetWorker.stopped_at).is_(None), col(FleetWorker.dead_finding_id).is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    for row in silent:
        spec = incidents.FindingSpec(
            rule="fleet:worker", target=f"worker/{row.name}", service=FLEET_SERVICE, severity=severity,
            summary=f"worker {row.name} ({row.location}, {row.host}) stopped heartbeating at "
                    f"{row.heartbeat_at:%H:%M:%S} UTC; its buckets go to the other workers",
            correlation_key=f"{FLEET_SERVICE}/worker/{row.name}", labels={"location": row.location,
                                                                          "category": "fleet"})
        row.dead_finding_id = incidents.open_finding(session, spec, [], now).id
        session.add(row)
    return [row.name for row in silent]


def location_state(session: Session, target: str, location: str) -> LocationState:
    """A target's threshold state at one location, locked until the commit (see ``locked_row``)."""
    return locked_row(session, LocationState, target=target, location=location)


def location_states(session: Session, target: str) -> dict[str, LocationState]:
    rows = session.exec(select(LocationState).where(LocationState.target == target)).all()
    return {row.location: row for row in rows}


def add_samples(session: Session, worker: str, data: bytes, rows: int, now: datetime) -> None:
    session.add(SampleBatch(worker=worker, created_at=now, rows=rows, data=data))


def take_samples(session: Session, limit: int) -> list[SampleBatch]:
    """The oldest ``limit`` batches, removed: they are the caller's to write before its commit
    (skipping batches another transaction is taking)."""
    batches = session.exec(select(SampleBatch).order_by(col(SampleBatch.id)).limit(limit)
                           .with_for_update(skip_locked=True)).all()
    if batches:
        session.exec(delete(SampleBatch).where(col(SampleBatch.id).in_([b.id for b in batches])))
    return list(batches)
