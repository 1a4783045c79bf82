"""Every write to the ledger. Functions take an open write session; the caller owns the
transaction, so an observation, its threshold state, its finding and its incident commit
together or not at all."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from ledger import lifecycle, silences
from ledger.errors import NotFound
from ledger.tables import (
    ActionRequest,
    Alert,
    ApprovalUse,
    Evidence,
    Finding,
    HypothesisRun,
    Incident,
    IngestPayload,
    LogCursor,
    Observation,
    RoutingDecision,
    RuleState,
    Silence,
    TargetState,
    TimelineEntry,
)

SYSTEM = "workbench"


@dataclass(frozen=True)
class FindingSpec:
    """What a detector says fired: enough to open a finding and name its incident."""

    rule: str
    target: str
    service: str
    severity: str
    summary: str
    correlation_key: str
    labels: dict[str, str] = field(default_factory=dict)  # more labels for silences to match
    parent: str | None = None  # a target whose open incident suppresses this finding

    def all_labels(self) -> dict[str, str]:
        parent = {"parent": self.parent} if self.parent else {}
        return {**self.labels, **parent, "rule": self.rule, "target": self.target, "service": self.service,
                "severity": self.severity}


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


@dataclass(frozen=True)
class RuleEvidence:
    """What a detector rule saw: its query, window, threshold and the window's values."""

    summary: str
    data: dict
    at: datetime


EvidenceItem = Observation | RuleEvidence


def target_state(session: Session, target: str) -> TargetState:
    state = session.get(TargetState, target)
    if state is None:
        state = TargetState(target=target)
        session.add(state)
    return state


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


def open_finding(session: Session, spec: FindingSpec, observations: list[EvidenceItem], now: datetime) -> Finding:
    """Record a new finding and fold it into the open incident with its key, or open one; a
    finding a silence, a maintenance window or its parent's open incident covers is kept but
    suppressed (linked to the parent's incident, if that is the reason)."""
    finding = Finding(
        rule=spec.rule, target=spec.target, service=spec.service, severity=spec.severity,
        summary=spec.summary, correlation_key=spec.correlation_key, first_seen=now, last_seen=now,
        occurrences=len(observations) or 1, labels=spec.all_labels(),
    )
    session.add(finding)
    session.flush()
    reason, parent = suppression(session, finding.labels, spec.parent, now)
    if reason is not None:
        finding.suppressed_by = reason
        if parent is not None:
            finding.incident_id = parent.id
            _timeline(session, parent, now, SYSTEM, "finding",
                      f"finding #{finding.id} of {spec.target} suppressed while this incident is open: {spec.summary}")
            for observation in observations:
                add_evidence(session, parent, finding, observation, now)
        return finding
    _fold(session, finding, now, f"finding #{finding.id} folded in: {spec.summary}")
    for observation in observations:
        add_evidence(session, _get(session, Incident, finding.incident_id), finding, observation, now)
    return finding


def _fold(session: Session, finding: Finding, now: datetime, message: str) -> Incident:
    """Put an unsuppressed finding into the open incident with its key, opening one if needed."""
    incident = open_incident_for(session, finding.correlation_key)
    if incident is None:
        incident = Incident(
            title=finding.summary, state=lifecycle.OBSERVED, severity=finding.severity, service=finding.service,
            correlation_key=finding.correlation_key, opened_at=now, updated_at=now, last_seen_at=now,
            finding_count=0,
        )
        session.add(incident)
        session.flush()
        _timeline(session, incident, now, SYSTEM, "transition", f"opened: {finding.summary}",
                  to_state=lifecycle.OBSERVED)
    elif incident.state == lifecycle.RECOVERING:
        _relapse(session, incident, now)
    finding.incident_id = incident.id
    incident.finding_count += 1
    incident.last_seen_at = now
    incident.updated_at = now
    _timeline(session, incident, now, SYSTEM, "finding", message)
    return incident


def suppression(session: Session, labels: dict[str, str], parent: str | None,
                now: datetime) -> tuple[str | None, Incident | None]:
    """Why a finding with ``labels`` should open no incident now, and the parent's incident
    when that is why: the parent target has an open incident, or a silence or maintenance
    window in force covers the labels."""
    if parent is not None:
        incident = session.exec(
            select(Incident).join(Finding, Finding.incident_id == Incident.id)
            .where(Finding.target == parent, col(Finding.recovered_at).is_(None),
                   col(Finding.suppressed_by).is_(None), col(Incident.resolved_at).is_(None))
        ).first()
        if incident is not None:
            return f"parent incident #{incident.id} ({parent})", incident
    for silence in session.exec(select(Silence).where(col(Silence.expired_at).is_(None),
                                                      Silence.starts_at <= now)):
        if silences.in_force(silence, now) and silences.covers(silence, labels):
            return f"{silence.kind} #{silence.id}", None
    return None, None


def release_suppressed(session: Session, now: datetime) -> int:
    """Findings still firing whose silence, window or parent incident has ended open (or join)
    their own incident now. Return how many."""
    released = 0
    for finding in session.exec(select(Finding).where(col(Finding.suppressed_by).is_not(None),
                                                      col(Finding.recovered_at).is_(None))).all():
        reason, _ = suppression(session, finding.labels, finding.labels.get("parent"), now)
        if reason is None:
            was = finding.suppressed_by
            finding.suppressed_by = None
            _fold(session, finding, now, f"finding #{finding.id} folded in: {finding.summary} "
                                         f"(still firing after {was} ended)")
            released += 1
    return released


def finding_failed_again(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime) -> None:
    """A firing finding saw another failure: count it; a recovering incident relapses."""
    finding = _get(session, Finding, finding_id)
    finding.last_seen = now
    finding.occurrences += 1
    if finding.suppressed_by is not None:
        return
    incident = _get(session, Incident, finding.incident_id)
    incident.last_seen_at = now
    if incident.state == lifecycle.RECOVERING:
        _relapse(session, incident, now)
        add_evidence(session, incident, finding, evidence, now)


def finding_recovering(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime, why: str) -> None:
    """A firing finding's signal recovered: the incident recovers unless another of its findings still fires."""
    finding = _get(session, Finding, finding_id)
    if finding.suppressed_by is not None:
        return
    incident = _get(session, Incident, finding.incident_id)
    if _other_firing(session, incident, finding) is None and lifecycle.RECOVERING in lifecycle.TRANSITIONS[incident.state]:
        _set_state(session, incident, lifecycle.RECOVERING, SYSTEM, now, why)
        add_evidence(session, incident, finding, evidence, now)


def finding_recovered(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime, why: str,
                      resolution: str) -> None:
    """The signal stayed recovered: close the finding; resolve its incident when nothing else fires."""
    finding = _get(session, Finding, finding_id)
    if finding.incident_id is not None:
        add_evidence(session, _get(session, Incident, finding.incident_id), finding, evidence, now)
    _close_finding(session, finding, now, why, resolution)


def note(session: Session, finding_id: int, message: str, now: datetime) -> None:
    """A line on the timeline of the finding's incident (none for a silenced finding)."""
    finding = _get(session, Finding, finding_id)
    if finding.incident_id is not None:
        _timeline(session, _get(session, Incident, finding.incident_id), now, SYSTEM, "note", message)


def _close_finding(session: Session, finding: Finding, now: datetime, why: str, resolution: str) -> None:
    finding.recovered_at = now
    if finding.incident_id is None:  # suppressed by a silence: no incident to tell
        return
    incident = _get(session, Incident, finding.incident_id)
    _timeline(session, incident, now, SYSTEM, "recovery", f"finding #{finding.id} recovered: {why}")
    if finding.suppressed_by is not None:  # a child of this incident: it does not resolve it
        return
    if _other_firing(session, incident, finding) is None and incident.state != lifecycle.RESOLVED:
        if incident.state != lifecycle.RECOVERING and lifecycle.RECOVERING in lifecycle.TRANSITIONS[incident.state]:
            _set_state(session, incident, lifecycle.RECOVERING, SYSTEM, now, "signal recovered")
        _set_state(session, incident, lifecycle.RESOLVED, SYSTEM, now, resolution)


ALERT_SEVERITIES = {"critical": "critical", "page": "critical", "error": "critical", "warning": "warning",
                    "warn": "warning", "info": "info", "none": "info"}


def record_alert(session: Session, event: AlertEvent, now: datetime, origin: str = "webhook") -> str:
    """Fold one alert event into the ledger; return what happened (new, duplicate, resolved, stale).

    An episode is (fingerprint, starts_at). Firing opens a finding (and so an incident);
    resolved recovers it. Redelivery is a duplicate; a firing event for an episode already
    resolved (reordered delivery) is stale and changes nothing.
    """
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
    alert, an episode met again after it was written in this batch) goes through ``record_alert``."""
    if not events:
        return []
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
        outcomes.append(record_alert(session, event, now, origin))
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
            _relapse(session, incident, now)
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
        finding = _get(session, Finding, alert.finding_id)
        if finding.recovered_at is None:
            _alert_evidence(session, finding, event, now)
            _close_finding(session, finding, now, why, "every alert resolved")


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
    """Pushed payloads as kept: (body, why it was refused or None when accepted, alerts it held)."""
    session.execute(_INSERT[IngestPayload], [
        dict(received_at=now, source=source, accepted=reason is None, reason=reason, alerts=alerts, body=body)
        for body, reason, alerts in kept])


def transition(session: Session, incident_id: int, to_state: str, actor: str, reason: str | None, now: datetime) -> Incident:
    """An operator's change of state, checked against the lifecycle table."""
    incident = _get(session, Incident, incident_id)
    lifecycle.check_transition(incident.state, to_state, by_operator=True, reason=reason)
    _set_state(session, incident, to_state, actor, now, (reason or "").strip() or f"marked {to_state}")
    return incident


def add_evidence(session: Session, incident: Incident, finding: Finding | None, evidence: EvidenceItem,
                 now: datetime) -> None:
    if isinstance(evidence, RuleEvidence):
        session.add(Evidence(incident_id=incident.id, finding_id=finding.id if finding else None, at=evidence.at,
                             kind="rule", summary=evidence.summary, data=evidence.data))
        return
    observation = evidence
    verdict = "passed" if observation.ok else "failed"
    summary = f"{observation.kind} probe of {observation.target} {verdict}"
    if observation.error:
        summary += f": {observation.error}"
    session.add(Evidence(
        incident_id=incident.id, finding_id=finding.id if finding else None, observation_id=observation.id,
        at=observation.started_at or now, kind="probe", summary=summary,
        data={"checks": observation.checks, "status": observation.status, "duration_ms": observation.duration_ms,
              "error": observation.error, "values": observation.values},
    ))


def open_incident_for(session: Session, correlation_key: str) -> Incident | None:
    return session.exec(
        select(Incident).where(Incident.correlation_key == correlation_key, col(Incident.resolved_at).is_(None))
    ).first()


def _other_firing(session: Session, incident: Incident, finding: Finding) -> int | None:
    return session.exec(
        select(Finding.id).where(Finding.incident_id == incident.id, Finding.id != finding.id,
                                 col(Finding.recovered_at).is_(None), col(Finding.suppressed_by).is_(None))
    ).first()


def _set_state(session: Session, incident: Incident, to_state: str, actor: str, now: datetime, reason: str) -> None:
    lifecycle.check_transition(incident.state, to_state, by_operator=False, reason=reason)
    previous = incident.state
    incident.state = to_state
    incident.updated_at = now
    if to_state == lifecycle.RESOLVED:
        incident.resolved_at = now
        _close_findings(session, incident, now)
    _timeline(session, incident, now, actor, "transition", reason, from_state=previous, to_state=to_state)


def _relapse(session: Session, incident: Incident, now: datetime) -> None:
    """Back to the state the incident was in before it started recovering."""
    entered = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id, TimelineEntry.to_state == lifecycle.RECOVERING)
        .order_by(col(TimelineEntry.id).desc())
    ).first()
    back = entered.from_state if entered and entered.from_state else lifecycle.OBSERVED
    _set_state(session, incident, back, SYSTEM, now, "signal failed again while recovering")


def _close_findings(session: Session, incident: Incident, now: datetime) -> None:
    """A resolved incident takes its findings with it; their targets and rules start afresh.
    Children it suppressed that still fire are released into their own incidents."""
    for finding in session.exec(
        select(Finding).where(Finding.incident_id == incident.id, col(Finding.recovered_at).is_(None))
    ).all():
        if finding.suppressed_by is not None:
            finding.suppressed_by = None
            _fold(session, finding, now, f"finding #{finding.id} folded in: {finding.summary} "
                                         f"(still firing after parent incident #{incident.id} resolved)")
            continue
        finding.recovered_at = now
    for rule_state in session.exec(
        select(RuleState).join(Finding, Finding.id == RuleState.finding_id)
        .where(Finding.incident_id == incident.id, col(Finding.recovered_at).is_not(None))
    ):
        rule_state.state, rule_state.finding_id, rule_state.pending_since, rule_state.firing_since = (
            "inactive", None, None, None)
    for state in session.exec(
        select(TargetState).join(Finding, Finding.id == TargetState.active_finding_id)
        .where(Finding.incident_id == incident.id, col(Finding.recovered_at).is_not(None))
    ):
        state.active_finding_id = None
        state.consecutive_failures = 0
        state.consecutive_successes = 0


def _timeline(session: Session, incident: Incident, now: datetime, actor: str, kind: str, message: str,
              from_state: str | None = None, to_state: str | None = None) -> None:
    session.add(TimelineEntry(incident_id=incident.id, at=now, actor=actor, kind=kind, message=message,
                              from_state=from_state, to_state=to_state))


def _get(session: Session, table, key):
    row = session.get(table, key)
    if row is None:
        raise NotFound(f"no {table.__tablename__.replace('_', ' ')} with id {key}")
    return row


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
    session.add(silence)
    session.flush()
    return silence


def expire_silence(session: Session, silence_id: int, actor: str, now: datetime) -> Silence:
    silence = _get(session, Silence, silence_id)
    if silence.expired_at is None and (silence.ends_at is None or silence.ends_at > now):
        silence.expired_at, silence.expired_by = now, actor
    return silence


# --- hypotheses and LLM routing -------------------------------------------------------------

def add_routing_decision(session: Session, decision: RoutingDecision) -> RoutingDecision:
    session.add(decision)
    session.flush()
    return decision


def import_routing_decisions(session: Session, decisions: list[RoutingDecision]) -> int:
    """Add the imported decisions whose external key is not in the ledger yet; return how many."""
    keys = [d.external_key for d in decisions]
    known = set(session.exec(select(RoutingDecision.external_key)
                             .where(col(RoutingDecision.external_key).in_(keys))).all())
    added = 0
    for decision in decisions:
        if decision.external_key not in known:
            known.add(decision.external_key)
            session.add(decision)
            added += 1
    return added


def request_refinement(session: Session, incident_id: int, requested_by: str, now: datetime) -> HypothesisRun:
    """Ask for a model's refinement of an incident's hypotheses; a request already waiting or
    running is returned instead of a second one."""
    _get(session, Incident, incident_id)
    waiting = session.exec(select(HypothesisRun).where(HypothesisRun.incident_id == incident_id,
                                                       col(HypothesisRun.status).in_(("pending", "running")))).first()
    if waiting is not None:
        return waiting
    run = HypothesisRun(incident_id=incident_id, requested_by=requested_by, requested_at=now)
    session.add(run)
    session.flush()
    return run


def start_refinement(session: Session, run_id: int, evidence_key: str, draft: dict, now: datetime) -> HypothesisRun:
    run = _get(session, HypothesisRun, run_id)
    run.status, run.started_at, run.evidence_key, run.draft = "running", now, evidence_key, draft
    return run


def finish_refinement(session: Session, run_id: int, now: datetime, *, refinement: dict | None, reason: str | None,
                      decision_id: int | None) -> HypothesisRun:
    """Done with the model's refinement, or failed with the reason (the draft stands)."""
    run = _get(session, HypothesisRun, run_id)
    run.status = "done" if refinement is not None else "failed"
    run.finished_at, run.refinement, run.reason, run.decision_id = now, refinement, reason, decision_id
    return run


def fail_stale_refinements(session: Session, started_before: datetime, now: datetime) -> int:
    """Runs still marked running that started before ``started_before`` (their worker stopped)
    fail; return how many."""
    stale = session.exec(select(HypothesisRun).where(HypothesisRun.status == "running",
                                                     col(HypothesisRun.started_at) < started_before)).all()
    for run in stale:
        run.status, run.finished_at, run.reason = "failed", now, "interrupted: the worker stopped before it finished"
    return len(stale)


# --- remediation: action requests -------------------------------------------------------


def add_action_request(session: Session, request: ActionRequest, message: str) -> ActionRequest:
    """Record a proposed action; its incident's timeline says who proposed it and what the gate made of it."""
    session.add(request)
    session.flush()
    _action_timeline(session, request, request.proposed_by, request.proposed_at, message)
    return request


def update_action_request(session: Session, request: ActionRequest, actor: str, now: datetime, message: str,
                          **changes) -> ActionRequest:
    """Move a request on (status and what goes with it); the timeline says who and why."""
    for name, value in changes.items():
        setattr(request, name, value)
    _action_timeline(session, request, actor, now, message)
    return request


def action_request(session: Session, request_id: int) -> ActionRequest:
    return _get(session, ActionRequest, request_id)


def incident(session: Session, incident_id: int) -> Incident:
    return _get(session, Incident, incident_id)


def action_requests(session: Session, status: str) -> list[ActionRequest]:
    return list(session.exec(select(ActionRequest).where(ActionRequest.status == status)
                             .order_by(col(ActionRequest.id))).all())


def proposed_actions(session: Session, incident_id: int) -> set[str]:
    """Actions proposed for the incident so far, whatever became of them."""
    return set(session.exec(select(ActionRequest.action).where(ActionRequest.incident_id == incident_id)).all())


def action_runs(session: Session, action: str, incident_id: int, since: datetime) -> list[ActionRequest]:
    """Requests of ``action`` that started running: on this incident, or at ``since`` or later."""
    return list(session.exec(select(ActionRequest).where(
        ActionRequest.action == action, col(ActionRequest.started_at).is_not(None),
        (ActionRequest.incident_id == incident_id) | (col(ActionRequest.started_at) >= since))).all())


def spend_approval(session: Session, request: ActionRequest, now: datetime) -> None:
    """Mark the request's approval token used; a second use is refused (see approval_spent)."""
    session.add(ApprovalUse(approval_id=request.approval_id, request_id=request.id, used_at=now))
    session.flush()


def approval_spent(session: Session, approval_id: str) -> ApprovalUse | None:
    return session.get(ApprovalUse, approval_id)


def open_incidents_with_findings(session: Session) -> list[tuple[Incident, list[Finding]]]:
    """Open incidents with the findings folded into them (not those they suppress)."""
    incidents = session.exec(select(Incident).where(col(Incident.resolved_at).is_(None))
                             .order_by(col(Incident.id))).all()
    findings: dict[int, list[Finding]] = {incident.id: [] for incident in incidents}
    for finding in session.exec(select(Finding).where(col(Finding.incident_id).in_(list(findings)),
                                                      col(Finding.suppressed_by).is_(None))):
        findings[finding.incident_id].append(finding)
    return [(incident, findings[incident.id]) for incident in incidents]


def add_incident_note(session: Session, incident_id: int, actor: str, message: str, now: datetime) -> None:
    _timeline(session, _get(session, Incident, incident_id), now, actor, "note", message)


def action_verified(session: Session, request: ActionRequest, observations: list[Observation], verdict: str,
                    to_state: str | None, message: str, now: datetime) -> Incident:
    """Keep the verification probes as evidence; move the incident to ``to_state`` when given
    and the lifecycle allows it, else say on the timeline where it stays."""
    incident = _get(session, Incident, request.incident_id)
    for observation in observations:
        add_observation(session, observation)
        add_evidence(session, incident, None, observation, now)
    request.verification = verdict
    text = f"action request #{request.id} {request.action}: {message}"
    if to_state is not None and to_state in lifecycle.TRANSITIONS[incident.state]:
        _set_state(session, incident, to_state, SYSTEM, now, text)
    else:
        _action_timeline(session, request, SYSTEM, now, f"{message}; the incident stays {incident.state}")
    return incident


def _action_timeline(session: Session, request: ActionRequest, actor: str, now: datetime, message: str) -> None:
    _timeline(session, _get(session, Incident, request.incident_id), now, actor, "action",
              f"action request #{request.id} {request.action}: {message}")
