"""Reads of the ledger for the pages, the CLI and notebooks. Returns plain models, not rows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import col, select

from ledger.db import read_session
from ledger.errors import NotFound
from ledger.lifecycle import OPEN_STATES
from ledger import silences as silence_rules
from ledger.tables import Evidence, Finding, Incident, LogCursor, Observation, Silence, TimelineEntry


class IncidentSummary(BaseModel):
    """The stable JSON shape of an incident (``workbench incidents list --format json``)."""

    id: int
    title: str
    state: str
    severity: str
    service: str
    correlation_key: str
    opened_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    finding_count: int


class TimelineItem(BaseModel):
    at: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    message: str


class EvidenceItem(BaseModel):
    id: int
    at: datetime
    kind: str
    summary: str
    finding_id: int | None
    checks: list[dict]
    data: dict


class FindingItem(BaseModel):
    id: int
    rule: str
    target: str
    summary: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    recovered_at: datetime | None
    suppressed_by: str | None = None


class ObservationItem(BaseModel):
    target: str
    started_at: datetime
    ok: bool
    duration_ms: float
    status: int | None
    error: str | None


class IncidentDetail(IncidentSummary):
    timeline: list[TimelineItem]
    evidence: list[EvidenceItem]
    findings: list[FindingItem]
    recent_observations: list[ObservationItem]


def list_incidents(engine: Engine, *, states: list[str] | None = None, severities: list[str] | None = None,
                   services: list[str] | None = None, limit: int = 500) -> list[IncidentSummary]:
    query = select(Incident)
    if states:
        query = query.where(col(Incident.state).in_(states))
    if severities:
        query = query.where(col(Incident.severity).in_(severities))
    if services:
        query = query.where(col(Incident.service).in_(services))
    query = query.order_by(col(Incident.resolved_at).is_not(None), col(Incident.updated_at).desc(),
                           col(Incident.id).desc()).limit(limit)
    with read_session(engine) as session:
        return [IncidentSummary.model_validate(row, from_attributes=True) for row in session.exec(query)]


def incident_detail(engine: Engine, incident_id: int, observations: int = 20) -> IncidentDetail:
    with read_session(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"no incident with id {incident_id}")
        timeline = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
                                .order_by(col(TimelineEntry.at), col(TimelineEntry.id))).all()
        evidence = session.exec(select(Evidence).where(Evidence.incident_id == incident_id)
                                .order_by(col(Evidence.at), col(Evidence.id))).all()
        findings = session.exec(select(Finding).where(Finding.incident_id == incident_id)
                                .order_by(col(Finding.id))).all()
        targets = sorted({f.target for f in findings})
        recent = session.exec(select(Observation).where(col(Observation.target).in_(targets))
                              .order_by(col(Observation.started_at).desc()).limit(observations)).all()
        return IncidentDetail(
            **IncidentSummary.model_validate(incident, from_attributes=True).model_dump(),
            timeline=[TimelineItem.model_validate(t, from_attributes=True) for t in timeline],
            evidence=[EvidenceItem(id=e.id, at=e.at, kind=e.kind, summary=e.summary, finding_id=e.finding_id,
                                   checks=e.data.get("checks", []), data=e.data) for e in evidence],
            findings=[FindingItem.model_validate(f, from_attributes=True) for f in findings],
            recent_observations=[ObservationItem.model_validate(o, from_attributes=True) for o in recent],
        )


def log_cursor(engine: Engine, target: str) -> LogCursor | None:
    """Where the logs probe of ``target`` stopped reading, or None before its first run."""
    with read_session(engine) as session:
        return session.get(LogCursor, target)


def open_incident_counts(engine: Engine) -> dict[str, int]:
    """Open incidents by state, every open state present (0 when none)."""
    with read_session(engine) as session:
        rows = session.exec(select(Incident.state, func.count()).where(col(Incident.resolved_at).is_(None))
                            .group_by(Incident.state)).all()
    counts = dict.fromkeys(OPEN_STATES, 0)
    counts.update({state: n for state, n in rows})
    return counts


def services(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return sorted(session.exec(select(Incident.service).distinct()).all())


class SilenceItem(BaseModel):
    """The stable JSON shape of a silence or maintenance window (``workbench silences list``)."""

    id: int
    kind: str
    status: str  # active | expiring | pending | expired
    matchers: list[dict]
    starts_at: datetime
    ends_at: datetime | None
    recurrence: dict | None
    author: str
    comment: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None


def list_silences(engine: Engine, now: datetime, *, include_expired: bool = False) -> list[SilenceItem]:
    """Silences and maintenance windows with their status at ``now``, newest first."""
    with read_session(engine) as session:
        rows = session.exec(select(Silence).order_by(col(Silence.id).desc())).all()
        items = [SilenceItem(**row.model_dump(), status=silence_rules.status(row, now)) for row in rows]
    return [item for item in items if include_expired or item.status != "expired"]
