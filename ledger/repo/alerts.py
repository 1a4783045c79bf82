"""Alerts from Alertmanager (pushed or pulled) and the payloads pushed to the worker: an alert
episode opens a finding through the incidents repository and recovers it when it resolves.
What an alert or a payload says is masked (secret values and shapes) before anything is kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from ledger import lifecycle, silences
from ledger.db import known_secrets
from ledger.repo.incidents import FindingSpec, close_finding, open_finding, relapse
from ledger.repo.rows import SYSTEM, get
from ledger.tables import Alert, Evidence, Finding, Incident, IngestPayload, Silence, TimelineEntry
from policies.secrets import redact_data


@dataclass(frozen=True)
class AlertEvent:
    """One alert as Alertmanager reports it, pulled from its API or pushed by its webhook.
    Deduplicated on (fingerprint, starts_at); ``raw`` keeps what was received."""

    source: str  # alertmanager-webhook | alertmanager-pull
    fingerprint: str
    status: str  # firing | resolved
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    raw: dict


ALERT_SEVERITIES = {"critical": "critical", "page": "critical", "error": "critical", "warning": "warning",
                    "warn": "warning", "info": "info", "none": "info"}


def record_alert(session: Session, event: AlertEvent, now: datetime, origin: str = "webhook") -> str:
    """Fold one alert event into the ledger; return what happened (new, duplicate, resolved, stale).

    An episode is (fingerprint, starts_at). Firing opens a finding (and so an incident);
    resolved recovers it. Redelivery is a duplicate; a firing event for an episode already
    resolved (reordered delivery) is stale and changes nothing. The event is masked first, so
    the alert, its finding, evidence and timeline keep no secret it carried.
    """
    return _record(session, _masked(event, known_secrets(session)), now, origin)


def _masked(event: AlertEvent, secrets: frozenset[str]) -> AlertEvent:
    """``event`` with secrets masked in every field that holds text."""
    return AlertEvent(**{field.name: redact_data(getattr(event, field.name), secrets) for field in fields(event)})


def _record(session: Session, event: AlertEvent, now: datetime, origin: str) -> str:
    """``record_alert`` of an event already masked."""
    alert = session.exec(select(Alert).where(Alert.fingerprint == event.fingerprint,
                                             Alert.starts_at == event.starts_at)).first()
    if alert is None:
        alert = Alert(
            fingerprint=event.fingerprint, starts_at=event.starts_at, status=event.status, ends_at=event.ends_at,
            alertname=event.labels.get("alertname", "unnamed"), labels=event.labels, annotations=event.annotations,
            generator_url=event.generator_url, source=event.source, origin=origin, first_received=now,
            last_received=now,
            raw=event.raw,
        )
        session.add(alert)
        session.flush()
        if event.status == "resolved":
            return "resolved"  # its firing delivery never came, or comes later and is stale
        finding = open_finding(session, _alert_finding(event), [], now)
        alert.finding_id = finding.id
        _alert_evidence(session, finding, event, now)
        return "new"
    alert.last_received = max(alert.last_received, now)
    alert.deliveries += 1
    if alert.status == "resolved" or event.status == "firing":
        return "stale" if alert.status == "resolved" and event.status == "firing" else "duplicate"
    _resolve_alert(session, alert, event, now, "resolved in Alertmanager")
    return "resolved"


IN_CHUNK = 5_000  # values in one IN (...): SQLite takes 32,766 query parameters, PostgreSQL 65,535
# A batch's statements, built once: building them for every batch cost more than running them.
_KNOWN_EPISODES = select(Alert.id, Alert.fingerprint, Alert.starts_at, Alert.status, Alert.last_received).where(
    col(Alert.fingerprint).in_(bindparam("fingerprints", expanding=True)))
_SILENCES = select(Silence).where(col(Silence.expired_at).is_(None), Silence.starts_at <= bindparam("now"))
_OPEN_INCIDENTS = select(Incident).where(col(Incident.correlation_key).in_(bindparam("keys", expanding=True)),
                                         col(Incident.resolved_at).is_(None))
_NEW_IDS = {table: insert(table.__table__).returning(table.__table__.c.id, sort_by_parameter_order=True)
            for table in (Incident, Finding)}
_INSERT = {table: insert(table.__table__) for table in (TimelineEntry, Alert, Evidence, IngestPayload)}
_REDELIVERED = update(Alert.__table__).where(Alert.__table__.c.id == bindparam("alert_id")).values(
    deliveries=Alert.__table__.c.deliveries + bindparam("more"), last_received=bindparam("at"))


def record_alerts(session: Session, events: list[AlertEvent], now: datetime, origin: str = "webhook") -> list[str]:
    """``record_alert`` for each event, in order, with a few statements for a whole batch: new
    firing episodes no silence covers (an alert storm) are written together, and so are
    redeliveries of known episodes (duplicate, stale); any other event (a resolution, a silenced
    alert, an episode met again after it was written in this batch) goes through ``record_alert``.
    Each event is masked first, as ``record_alert`` masks it."""
    if not events:
        return []
    secrets = known_secrets(session)
    events = [_masked(event, secrets) for event in events]
    known = {(row.fingerprint, row.starts_at): row for fingerprints in _chunks({e.fingerprint for e in events})
             for row in session.execute(_KNOWN_EPISODES, {"fingerprints": fingerprints})}
    in_force = [s for s in session.scalars(_SILENCES, {"now": now}) if silences.in_force(s, now)]
    outcomes: list[str] = []
    storm: list[tuple[AlertEvent, FindingSpec]] = []
    redelivered: Counter[int] = Counter()
    one_by_one: set[tuple[str, datetime]] = set()  # episodes written in this batch: later events wait for them
    for event in events:
        key = (event.fingerprint, event.starts_at)
        episode = known.get(key)
        spec = _alert_finding(event) if episode is None else None
        if key not in one_by_one:
            if spec and event.status == "firing" and not any(silences.covers(s, spec.all_labels()) for s in in_force):
                storm.append((event, spec))
                outcomes.append("new")
                one_by_one.add(key)
                continue
            if episode and not (episode.status == "firing" and event.status == "resolved"):
                redelivered[episode.id] += 1
                outcomes.append("stale" if episode.status == "resolved" and event.status == "firing" else "duplicate")
                continue
        _open_alert_findings(session, storm, now, origin)
        _count_redeliveries(session, redelivered, known, now)
        storm, redelivered = [], Counter()
        outcomes.append(_record(session, event, now, origin))
        one_by_one.add(key)
    _open_alert_findings(session, storm, now, origin)
    _count_redeliveries(session, redelivered, known, now)
    return outcomes


def _chunks(values) -> list[list]:
    """``values`` in lists of at most IN_CHUNK, to stay within a database's query parameters."""
    values = list(values)
    return [values[i:i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _count_redeliveries(session: Session, redelivered: Counter[int], known: dict, now: datetime) -> None:
    """What ``record_alert`` writes for a redelivered episode: one more delivery, received now."""
    if not redelivered:
        return
    last = {row.id: row.last_received for row in known.values()}
    session.execute(_REDELIVERED, [dict(alert_id=alert_id, more=more, at=max(last[alert_id], now))
                                   for alert_id, more in redelivered.items()])


def _open_alert_findings(session: Session, storm: list[tuple[AlertEvent, FindingSpec]], now: datetime,
                         origin: str) -> None:
    """What ``record_alert`` writes for new firing alerts no silence covers (alert, finding folded
    into the open incident with its key or a new one, evidence, timeline), as bulk inserts."""
    if not storm:
        return
    per_key = Counter(spec.correlation_key for _, spec in storm)
    incident_ids: dict[str, int] = {}
    for incident in (incident for keys in _chunks(per_key) for incident in session.scalars(_OPEN_INCIDENTS,
                                                                                          {"keys": keys})):
        if incident.state == lifecycle.RECOVERING:
            relapse(session, incident, now)
        incident.finding_count += per_key[incident.correlation_key]
        incident.last_seen_at = incident.updated_at = now
        incident_ids[incident.correlation_key] = incident.id
    opening: dict[str, FindingSpec] = {}  # keys with no open incident, and the first finding of each
    for _, spec in storm:
        if spec.correlation_key not in incident_ids:
            opening.setdefault(spec.correlation_key, spec)
    timeline = []
    if opening:
        ids = session.execute(_NEW_IDS[Incident], [
            dict(title=spec.summary, state=lifecycle.OBSERVED, severity=spec.severity, service=spec.service,
                 correlation_key=key, opened_at=now, updated_at=now, last_seen_at=now, finding_count=per_key[key])
            for key, spec in opening.items()]).scalars().all()
        incident_ids.update(zip(opening, ids))
        timeline += [dict(incident_id=incident_ids[key], at=now, actor=SYSTEM, kind="transition",
                          message=f"opened: {spec.summary}", from_state=None, to_state=lifecycle.OBSERVED)
                     for key, spec in opening.items()]
    finding_ids = session.execute(_NEW_IDS[Finding], [
        dict(rule=spec.rule, target=spec.target, service=spec.service, severity=spec.severity, summary=spec.summary,
             correlation_key=spec.correlation_key, first_seen=now, last_seen=now, occurrences=1,
             labels=spec.all_labels(), incident_id=incident_ids[spec.correlation_key], suppressed_by=None)
        for _, spec in storm]).scalars().all()
    alerts, evidence = [], []
    for (event, spec), finding_id in zip(storm, finding_ids):
        incident_id = incident_ids[spec.correlation_key]
        timeline.append(dict(incident_id=incident_id, at=now, actor=SYSTEM, kind="finding", from_state=None,
                             to_state=None, message=f"finding #{finding_id} folded in: {spec.summary}"))
        alerts.append(dict(
            fingerprint=event.fingerprint, starts_at=event.starts_at, status=event.status, ends_at=event.ends_at,
            alertname=event.labels.get("alertname", "unnamed"), labels=event.labels, annotations=event.annotations,
            generator_url=event.generator_url, source=event.source, origin=origin, first_received=now,
            last_received=now, deliveries=1, finding_id=finding_id, raw=event.raw))
        evidence.append(dict(
            incident_id=incident_id, finding_id=finding_id, observation_id=None, at=now, kind="alert",
            summary=f"alert {event.labels.get('alertname', 'unnamed')} {event.status} ({event.source})",
            data={"labels": event.labels, "annotations": event.annotations, "starts_at": event.starts_at.isoformat(),
                  "ends_at": event.ends_at.isoformat() if event.ends_at else None,
                  "generator_url": event.generator_url, "checks": []}))
    session.execute(_INSERT[TimelineEntry], timeline)
    session.execute(_INSERT[Alert], alerts)
    session.execute(_INSERT[Evidence], evidence)


def resolve_unlisted_alerts(session: Session, origin: str, listed: set[tuple[str, datetime]], now: datetime,
                            grace: timedelta) -> int:
    """Alerts a pull has not listed for ``grace`` have resolved: recover their findings; return how many."""
    firing = session.exec(select(Alert).where(Alert.origin == origin, Alert.status == "firing")).all()
    gone = [a for a in firing if (a.fingerprint, a.starts_at) not in listed and a.last_received <= now - grace]
    for alert in gone:
        event = AlertEvent(source=alert.source, fingerprint=alert.fingerprint, status="resolved",
                           starts_at=alert.starts_at, ends_at=now, labels=alert.labels,
                           annotations=alert.annotations, generator_url=alert.generator_url, raw=alert.raw)
        _resolve_alert(session, alert, event, now, f"no longer listed by {origin}")
    return len(gone)


def _resolve_alert(session: Session, alert: Alert, event: AlertEvent, now: datetime, why: str) -> None:
    alert.status, alert.ends_at, alert.raw = "resolved", event.ends_at, event.raw
    if alert.finding_id is not None:
        finding = get(session, Finding, alert.finding_id)
        if finding.recovered_at is None:
            _alert_evidence(session, finding, event, now)
            close_finding(session, finding, now, why, "every alert resolved")


def _alert_finding(event: AlertEvent) -> FindingSpec:
    labels = event.labels
    name = labels.get("alertname", "unnamed")
    service = labels.get("service") or labels.get("job") or "alertmanager"
    summary = event.annotations.get("summary") or event.annotations.get("description") or "firing"
    return FindingSpec(
        rule=f"alert:{name}", target=labels.get("instance") or name, service=service,
        severity=ALERT_SEVERITIES.get(labels.get("severity", "").lower(), "warning"),
        summary=f"{name}: {summary}", correlation_key=f"{service}/alert:{name}", labels=dict(labels),
    )


def _alert_evidence(session: Session, finding: Finding, event: AlertEvent, now: datetime) -> None:
    if finding.incident_id is None:  # silenced: the alert row keeps what was received
        return
    session.add(Evidence(
        incident_id=finding.incident_id, finding_id=finding.id, at=now, kind="alert",
        summary=f"alert {event.labels.get('alertname', 'unnamed')} {event.status} ({event.source})",
        data={"labels": event.labels, "annotations": event.annotations, "starts_at": event.starts_at.isoformat(),
              "ends_at": event.ends_at.isoformat() if event.ends_at else None,
              "generator_url": event.generator_url, "checks": []},
    ))


def add_ingest_payloads(session: Session, source: str, kept: list[tuple[str, str | None, int]], now: datetime) -> None:
    """Pushed payloads as kept, masked: (body, why it was refused or None when accepted, alerts it held)."""
    secrets = known_secrets(session)
    session.execute(_INSERT[IngestPayload], [
        dict(received_at=now, source=source, accepted=reason is None, reason=redact_data(reason, secrets),
             alerts=alerts, body=redact_data(body, secrets))
        for body, reason, alerts in kept])

