"""Reads of the outbox for the pages, the CLI and /metrics: notifications and their attempts, the
inbox counts, each channel's delivery health, the answers channels brought back, and time to
acknowledge and resolve."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import col, select

from ledger.db import read_session
from ledger.lifecycle import DeliveryStatus, RequestStatus
from ledger.queries import _shown
from ledger.tables import ActionRequest, ChannelAnswer, DeliveryAttempt, Incident, Notification


class NotificationItem(BaseModel):
    """The stable JSON shape of a notification (``workbench notifications list --format json``)."""

    id: int
    channel: str
    incident_id: int | None
    request_id: int | None
    category: str
    status: str
    attempts: int
    error: str | None
    at: datetime
    sent_at: datetime | None
    route: str | None
    fallback_of: int | None
    title: str
    interrupted: int = 0  # attempts a stopped worker never finished: the channel may have it twice
    read_at: datetime | None = None


class AttemptItem(BaseModel):
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    error: str | None
    latency_ms: float | None


class ChannelHealth(BaseModel):
    channel: str
    sent: int
    failed: int  # failed for good (or handed to a fallback)
    pending: int
    last_sent_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class AnswerItem(BaseModel):
    at: datetime
    channel: str
    identity: str
    operator: str | None
    answer: str
    outcome: str
    detail: str


class Inbox(BaseModel):
    """What waits for the operator: the badge in the app's sidebar and tab title."""

    open_incidents: int
    unacknowledged: int
    pending_approvals: int
    undelivered: int  # failed for good and not yet read (tests aside: whoever sent one saw it fail)

    @property
    def total(self) -> int:
        return self.open_incidents + self.pending_approvals + self.undelivered


def list_notifications(engine: Engine, *, incident_id: int | None = None, statuses: list[str] | None = None,
                       channel: str | None = None, unread: bool = False, limit: int = 500) -> list[NotificationItem]:
    """Newest first."""
    query = select(Notification)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    if statuses:
        query = query.where(col(Notification.status).in_(statuses))
    if channel:
        query = query.where(Notification.channel == channel)
    if unread:
        query = query.where(col(Notification.read_at).is_(None))
    with read_session(engine) as session:
        rows = session.exec(query.order_by(col(Notification.id).desc()).limit(limit)).all()
        open_attempts = dict(session.exec(
            select(DeliveryAttempt.notification_id, func.count())
            .where(col(DeliveryAttempt.finished_at).is_(None), col(DeliveryAttempt.notification_id).in_([r.id for r in rows]))
            .group_by(DeliveryAttempt.notification_id)).all()) if rows else {}
        return [_shown(session, NotificationItem(
            **row.model_dump(exclude={"payload", "fallbacks", "key", "digest", "next_attempt_at"}),
            title=str((row.payload or {}).get("title", "")), interrupted=_interrupted(row, open_attempts)))
            for row in rows]


def _interrupted(row: Notification, open_attempts: dict[int, int]) -> int:
    """Attempts never finished; the one of a pending notification in flight right now does not count."""
    return open_attempts.get(row.id, 0) - (1 if row.status == DeliveryStatus.PENDING and open_attempts.get(row.id)
                                           else 0)


def delivery_attempts(engine: Engine, notification_id: int) -> list[AttemptItem]:
    with read_session(engine) as session:
        rows = session.exec(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == notification_id)
                            .order_by(col(DeliveryAttempt.id))).all()
        return [_shown(session, AttemptItem.model_validate(row, from_attributes=True)) for row in rows]


def notification_counts(engine: Engine) -> dict[str, int]:
    """Notifications by status, every status present (0 when none)."""
    with read_session(engine) as session:
        rows = session.exec(select(Notification.status, func.count()).group_by(Notification.status)).all()
    counts = dict.fromkeys(DeliveryStatus, 0)
    counts.update(dict(rows))
    return {str(status): n for status, n in counts.items()}


def inbox(engine: Engine) -> Inbox:
    with read_session(engine) as session:
        open_incidents, unacknowledged = session.exec(
            select(func.count(), func.count().filter(col(Incident.acknowledged_at).is_(None)))
            .where(col(Incident.resolved_at).is_(None))).one()
        pending = session.exec(select(func.count()).select_from(ActionRequest)
                               .where(ActionRequest.status == RequestStatus.PENDING)).one()
        undelivered = session.exec(select(func.count()).select_from(Notification)
                                   .where(Notification.status == DeliveryStatus.FAILED,
                                          Notification.category != "test", col(Notification.read_at).is_(None))).one()
    return Inbox(open_incidents=open_incidents, unacknowledged=unacknowledged, pending_approvals=pending,
                 undelivered=undelivered)


def channel_health(engine: Engine, since: datetime) -> list[ChannelHealth]:
    """Per channel, what it did since ``since``: delivered, failed for good, waiting; its last error."""
    with read_session(engine) as session:
        rows = session.exec(select(Notification).where(col(Notification.at) >= since)
                            .order_by(col(Notification.id))).all()
        health: dict[str, dict] = {}
        for row in rows:
            item = health.setdefault(row.channel, {"channel": row.channel, "sent": 0, "failed": 0, "pending": 0,
                                                   "last_sent_at": None, "last_error": None, "last_error_at": None})
            if row.status == DeliveryStatus.SENT:
                item["sent"] += 1
                item["last_sent_at"] = row.sent_at
            elif row.status == DeliveryStatus.PENDING:
                item["pending"] += 1
            else:
                item["failed"] += 1
            if row.error:
                item["last_error"], item["last_error_at"] = row.error, row.at
        return [_shown(session, ChannelHealth(**item)) for item in sorted(health.values(), key=lambda i: i["channel"])]


def channel_answers(engine: Engine, limit: int = 200) -> list[AnswerItem]:
    with read_session(engine) as session:
        rows = session.exec(select(ChannelAnswer).order_by(col(ChannelAnswer.id).desc()).limit(limit)).all()
        return [_shown(session, AnswerItem.model_validate(row, from_attributes=True)) for row in rows]


class ResponseTimes(BaseModel):
    """Mean time to acknowledge (MTTA) and to resolve (MTTR) of the incidents opened in a range."""

    incidents: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None


def response_times(engine: Engine, since: datetime) -> ResponseTimes:
    with read_session(engine) as session:
        rows = session.exec(select(Incident.opened_at, Incident.acknowledged_at, Incident.resolved_at)
                            .where(col(Incident.opened_at) >= since)).all()
    acks = [(ack - opened).total_seconds() for opened, ack, _ in rows if ack is not None]
    fixes = [(done - opened).total_seconds() for opened, _, done in rows if done is not None]
    return ResponseTimes(incidents=len(rows), acknowledged=len(acks), resolved=len(fixes),
                         mtta_seconds=sum(acks) / len(acks) if acks else None,
                         mttr_seconds=sum(fixes) / len(fixes) if fixes else None)
