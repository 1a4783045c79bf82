"""Probe observations, each target's threshold state and where a logs target resumes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from ledger.repo.rows import locked_row
from ledger.tables import LogCursor, Observation, TargetState


def target_state(session: Session, target: str) -> TargetState:
    """The target's threshold state, locked until the commit: records of one target (from
    several workers) take turns; the first one creates it."""
    return locked_row(session, TargetState, target=target)


def recorded(session: Session, target: str, slot_key: str) -> bool:
    """Whether the run ``slot_key`` of ``target`` is in the ledger already."""
    return session.exec(select(Observation.id).where(Observation.target == target,
                                                     Observation.slot_key == slot_key)).first() is not None


def save_target_state(session: Session, state: TargetState, *, failures: int, successes: int,
                      observation: Observation, active_finding_id: int | None) -> None:
    state.consecutive_failures = failures
    state.consecutive_successes = successes
    state.last_ok = observation.ok
    state.last_observed_at = observation.started_at
    state.active_finding_id = active_finding_id


def save_log_cursor(session: Session, target: str, *, path: str, inode: str | None, offset: int,
                    now: datetime) -> None:
    """Where the logs probe of ``target`` resumes next run (see LogCursor)."""
    cursor = session.get(LogCursor, target) or LogCursor(target=target)
    cursor.path, cursor.inode, cursor.offset, cursor.updated_at = path, inode, offset, now
    session.add(cursor)


def add_observation(session: Session, observation: Observation) -> Observation:
    session.add(observation)
    session.flush()
    return observation

