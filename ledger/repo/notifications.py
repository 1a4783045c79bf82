"""Writes of the outbox: notifications planned once each (by key), their delivery attempts, the
buttons sent with them and the answers that came back."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from ledger.lifecycle import DeliveryStatus
from ledger.repo.rows import masked
from ledger.tables import ChannelAnswer, ChannelCursor, ChannelPrompt, DeliveryAttempt, Notification


def planned(session: Session, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` already in the outbox."""
    keys = list(keys)
    return set(session.exec(select(Notification.key).where(col(Notification.key).in_(keys)))) if keys else set()


def enqueue(session: Session, *, key: str, channels: list[str], category: str, payload: dict, digest: str,
            now: datetime, incident_id: int | None = None, request_id: int | None = None, route: str | None = None,
            fallback_of: int | None = None) -> Notification:
    """A notification to ``channels[0]`` (the others take over in turn if it fails for good), due now."""
    notification = Notification(key=key, channel=channels[0], fallbacks=list(channels[1:]), category=category,
                                incident_id=incident_id, request_id=request_id, route=route, at=now,
                                next_attempt_at=now, digest=digest, payload=masked(session, payload),
                                fallback_of=fallback_of)
    session.add(notification)
    return notification


def due(session: Session, now: datetime, limit: int) -> list[Notification]:
    return list(session.exec(select(Notification).where(Notification.status == DeliveryStatus.PENDING,
                                                        col(Notification.next_attempt_at) <= now)
                             .order_by(col(Notification.next_attempt_at), col(Notification.id)).limit(limit)))


def start_attempts(session: Session, notifications: list[Notification], now: datetime) -> list[DeliveryAttempt]:
    """Record an attempt for each notification before it is tried: an attempt a stopped worker
    never finished stays open, and says the channel may have it twice."""
    attempts = []
    for notification in notifications:
        notification.attempts += 1
        attempts.append(DeliveryAttempt(notification_id=notification.id, started_at=now))
        session.add(notification)
    session.add_all(attempts)
    session.flush()
    return attempts


def by_id(session: Session, ids: list[int], pending: bool = False) -> list[Notification]:
    query = select(Notification).where(col(Notification.id).in_(ids))
    if pending:
        query = query.where(Notification.status == DeliveryStatus.PENDING)
    return list(session.exec(query.order_by(col(Notification.id))))


def attempts_by_id(session: Session, ids: list[int]) -> dict[int, DeliveryAttempt]:
    return {a.id: a for a in session.exec(select(DeliveryAttempt).where(col(DeliveryAttempt.id).in_(ids)))}


def finish_attempt(session: Session, attempt: DeliveryAttempt, now: datetime, error: str | None,
                   latency_ms: float) -> None:
    attempt.finished_at, attempt.ok, attempt.latency_ms = now, error is None, latency_ms
    attempt.error = None if error is None else masked(session, error)


def new_prompt(session: Session, *, channel: str, purpose: str, expires_at: datetime, now: datetime,
               request_id: int | None = None, incident_id: int | None = None) -> str:
    """A short single-use nonce for the buttons of one message (it fits Telegram's 64-byte callback data)."""
    nonce = secrets.token_urlsafe(12)
    session.add(ChannelPrompt(nonce=nonce, channel=channel, purpose=purpose, request_id=request_id,
                              incident_id=incident_id, created_at=now, expires_at=expires_at))
    return nonce


def claim_prompt(session: Session, nonce: str, operator: str, answer: str, now: datetime) -> bool:
    """Spend the nonce: True for the one answer that does, False for any other (already answered)."""
    spent = session.execute(update(ChannelPrompt).where(ChannelPrompt.nonce == nonce,
                                                        col(ChannelPrompt.answered_at).is_(None))
                            .values(answered_at=now, answered_by=operator, answer=answer))
    return spent.rowcount == 1


def record_answer(session: Session, **fields) -> None:
    session.add(ChannelAnswer(**{key: masked(session, value) if isinstance(value, str) else value
                                 for key, value in fields.items()}))


def cursor(session: Session, channel: str) -> int:
    row = session.get(ChannelCursor, channel)
    return row.offset if row else 0


def move_cursor(session: Session, channel: str, offset: int, now: datetime) -> None:
    row = session.get(ChannelCursor, channel) or ChannelCursor(channel=channel, offset=offset, updated_at=now)
    row.offset, row.updated_at = offset, now
    session.add(row)


def mark_read(session: Session, ids: list[int] | None, now: datetime) -> int:
    """Mark notifications seen in the inbox (all the unread ones when ``ids`` is None)."""
    query = update(Notification).where(col(Notification.read_at).is_(None)).values(read_at=now)
    if ids is not None:
        query = query.where(col(Notification.id).in_(ids))
    return session.execute(query).rowcount
