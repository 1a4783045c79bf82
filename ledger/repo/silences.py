"""Silences and maintenance windows; the operator's comment is masked (secret values and shapes)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from ledger.repo.rows import get, mask
from ledger.tables import Silence


def add_silence(session: Session, *, matchers: list[dict], starts_at: datetime, ends_at: datetime | None,
                author: str, comment: str, now: datetime, kind: str = "silence",
                recurrence: dict | None = None) -> Silence:
    """A silence (or maintenance window). Its matchers are stored as given; at least one is
    needed, so that nothing silences everything by accident."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if not comment.strip():
        raise ValueError("a silence needs a comment saying why")
    if ends_at is not None and ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    silence = Silence(kind=kind, matchers=matchers, starts_at=starts_at, ends_at=ends_at, recurrence=recurrence,
                      author=author, comment=comment.strip(), created_at=now)
    session.add(mask(session, silence, ("comment",)))
    session.flush()
    return silence


def expire_silence(session: Session, silence_id: int, actor: str, now: datetime) -> Silence:
    silence = get(session, Silence, silence_id)
    if silence.expired_at is None and (silence.ends_at is None or silence.ends_at > now):
        silence.expired_at, silence.expired_by = now, actor
    return silence

