"""Findings and incidents: a finding folds into the open incident with its correlation key (or
opens one); silences, maintenance windows and parent incidents suppress it; recovery, relapse,
resolution; the timeline and evidence that go with each step; the operator's transitions.
Findings, evidence and timeline entries are masked (secret values and shapes) as they are kept:
their text comes from probes, series labels, alerts and operators."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from ledger import lifecycle, silences
from ledger.errors import TransitionRefused
from ledger.repo.rows import SYSTEM, get, mask, masked
from ledger.tables import (
    ActionRequest,
    Evidence,
    Finding,
    FindingFeedback,
    Incident,
    Observation,
    RuleState,
    Silence,
    TargetState,
    TimelineEntry,
)
from policies.schema import SEVERITY_RANK


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
class RuleEvidence:
    """What a detector rule saw: its query, window, threshold and the window's values."""

    summary: str
    data: dict
    at: datetime


EvidenceItem = Observation | RuleEvidence


def open_finding(session: Session, spec: FindingSpec, observations: list[EvidenceItem], now: datetime) -> Finding:
    """Record a new finding and fold it into the open incident with its key, or open one; a
    finding a silence, a maintenance window or its parent's open incident covers is kept but
    suppressed (linked to the parent's incident, if that is the reason)."""
    spec = FindingSpec(**masked(session, asdict(spec)))
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
            timeline(session, parent, now, SYSTEM, "finding",
                      f"finding #{finding.id} of {spec.target} suppressed while this incident is open: {spec.summary}")
            for observation in observations:
                add_evidence(session, parent, finding, observation, now)
        return finding
    _fold(session, finding, now, f"finding #{finding.id} folded in: {spec.summary}")
    for observation in observations:
        add_evidence(session, get(session, Incident, finding.incident_id), finding, observation, now)
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
        timeline(session, incident, now, SYSTEM, "transition", f"opened: {finding.summary}",
                  to_state=lifecycle.OBSERVED)
    elif incident.state == lifecycle.RECOVERING:
        relapse(session, incident, now)
    finding.incident_id = incident.id
    incident.finding_count += 1
    incident.last_seen_at = now
    incident.updated_at = now
    timeline(session, incident, now, SYSTEM, "finding", message)
    session.flush()
    rate_severity(session, incident, now)
    return incident


def rate_severity(session: Session, incident: Incident, now: datetime) -> None:
    """An open incident is as severe as the worst of its firing findings: a rise or a fall is put on
    the timeline with the finding that caused it. A resolved incident keeps the severity it had."""
    firing = session.exec(
        select(Finding).where(Finding.incident_id == incident.id, col(Finding.recovered_at).is_(None),
                              col(Finding.suppressed_by).is_(None))
    ).all()
    if not firing or incident.resolved_at is not None:
        return
    worst = max(firing, key=lambda f: (SEVERITY_RANK.get(f.severity, 0), -f.id))
    if worst.severity == incident.severity:
        return
    rose = SEVERITY_RANK.get(worst.severity, 0) > SEVERITY_RANK.get(incident.severity, 0)
    why = (f"finding #{worst.id} is {worst.severity}: {worst.summary}" if rose
           else f"the worst finding still firing, #{worst.id}, is {worst.severity}")
    timeline(session, incident, now, SYSTEM, "severity",
             f"severity {'rose' if rose else 'fell'} from {incident.severity} to {worst.severity}: {why}")
    incident.severity = worst.severity
    incident.updated_at = now


SHADOW = "shadow: a learned rule in training opens no incident"


def suppression(session: Session, labels: dict[str, str], parent: str | None,
                now: datetime) -> tuple[str | None, Incident | None]:
    """Why a finding with ``labels`` should open no incident now, and the parent's incident
    when that is why: the parent target has an open incident, or a silence or maintenance
    window in force covers the labels."""
    if labels.get("shadow") == "true":
        return SHADOW, None
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
            incident = _fold(session, finding, now, f"finding #{finding.id} folded in: {finding.summary} "
                                                    f"(still firing after {was} ended)")
            _carry_evidence(session, incident, finding, now)
            released += 1
    return released


RELEASED_EVIDENCE = 5  # the latest failures a released finding brings to its incident


def _carry_evidence(session: Session, incident: Incident, finding: Finding, now: datetime) -> None:
    """A finding kept silent has no evidence on any incident: the latest failed probes of its target
    since it fired come with it. A rule's finding gets its evidence at the rule's next evaluation
    (finding_failed_again)."""
    failures = session.exec(
        select(Observation).where(Observation.target == finding.target, col(Observation.ok).is_(False),
                                  Observation.started_at >= finding.first_seen, Observation.started_at <= now)
        .order_by(col(Observation.started_at).desc(), col(Observation.id).desc()).limit(RELEASED_EVIDENCE)
    ).all()
    for observation in reversed(failures):
        add_evidence(session, incident, finding, observation, now)


def finding_failed_again(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime) -> None:
    """A firing finding saw another failure: count it; a recovering incident relapses."""
    finding = get(session, Finding, finding_id)
    finding.last_seen = now
    finding.occurrences += 1
    if finding.suppressed_by is not None:
        return
    incident = get(session, Incident, finding.incident_id, lock=True)
    incident.last_seen_at = now
    if incident.state == lifecycle.RECOVERING:
        relapse(session, incident, now)
        add_evidence(session, incident, finding, evidence, now)
    elif finding.rule.startswith("rule:") and not _has_evidence(session, incident, finding):
        # released from a silence, a rule's finding has none of its own yet
        add_evidence(session, incident, finding, evidence, now)


def _has_evidence(session: Session, incident: Incident, finding: Finding) -> bool:
    return session.exec(select(Evidence.id).where(Evidence.incident_id == incident.id,
                                                  Evidence.finding_id == finding.id).limit(1)).first() is not None


def finding_recovering(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime, why: str) -> None:
    """A firing finding's signal recovered: the incident recovers unless another of its findings still fires."""
    finding = get(session, Finding, finding_id)
    if finding.suppressed_by is not None:
        return
    incident = get(session, Incident, finding.incident_id, lock=True)
    if _other_firing(session, incident, finding) is None and lifecycle.RECOVERING in lifecycle.TRANSITIONS[incident.state]:
        set_state(session, incident, lifecycle.RECOVERING, SYSTEM, now, why)
        add_evidence(session, incident, finding, evidence, now)


def finding_recovered(session: Session, finding_id: int, evidence: EvidenceItem, now: datetime, why: str,
                      resolution: str) -> None:
    """The signal stayed recovered: close the finding; resolve its incident when nothing else fires."""
    finding = get(session, Finding, finding_id)
    if finding.incident_id is not None:
        add_evidence(session, get(session, Incident, finding.incident_id), finding, evidence, now)
    close_finding(session, finding, now, why, resolution)


def note(session: Session, finding_id: int, message: str, now: datetime) -> None:
    """A line on the timeline of the finding's incident (none for a silenced finding)."""
    finding = get(session, Finding, finding_id)
    if finding.incident_id is not None:
        timeline(session, get(session, Incident, finding.incident_id), now, SYSTEM, "note", message)


def close_finding(session: Session, finding: Finding, now: datetime, why: str, resolution: str) -> None:
    finding.recovered_at = now
    if finding.incident_id is None:  # suppressed by a silence: no incident to tell
        return
    incident = get(session, Incident, finding.incident_id, lock=True)
    timeline(session, incident, now, SYSTEM, "recovery", f"finding #{finding.id} recovered: {why}")
    if finding.suppressed_by is not None:  # a child of this incident: it does not resolve it
        return
    session.flush()
    rate_severity(session, incident, now)
    if _other_firing(session, incident, finding) is None and incident.state != lifecycle.RESOLVED:
        if incident.state != lifecycle.RECOVERING and lifecycle.RECOVERING in lifecycle.TRANSITIONS[incident.state]:
            set_state(session, incident, lifecycle.RECOVERING, SYSTEM, now, "signal recovered")
        set_state(session, incident, lifecycle.RESOLVED, SYSTEM, now, resolution)


def transition(session: Session, incident_id: int, to_state: str, actor: str, reason: str | None, now: datetime) -> Incident:
    """An operator's change of state, checked against the lifecycle table."""
    incident = get(session, Incident, incident_id, lock=True)
    lifecycle.check_transition(incident.state, to_state, by_operator=True, reason=reason)
    set_state(session, incident, to_state, actor, now, (reason or "").strip() or f"marked {to_state}")
    return incident


EVIDENCE_TEXT = ("summary", "data")


def add_evidence(session: Session, incident: Incident, finding: Finding | None, evidence: EvidenceItem,
                 now: datetime) -> None:
    if isinstance(evidence, RuleEvidence):
        session.add(mask(session, Evidence(incident_id=incident.id, finding_id=finding.id if finding else None,
                                           at=evidence.at, kind="rule", summary=evidence.summary, data=evidence.data),
                         EVIDENCE_TEXT))
        return
    observation = evidence
    verdict = "passed" if observation.ok else "failed"
    summary = f"{observation.kind} probe of {observation.target} {verdict}"
    if observation.location:
        summary += f" from {observation.location}"
    if observation.error:
        summary += f": {observation.error}"
    session.add(mask(session, Evidence(
        incident_id=incident.id, finding_id=finding.id if finding else None, observation_id=observation.id,
        at=observation.started_at or now, kind="probe", summary=summary,
        data={"checks": observation.checks, "status": observation.status, "duration_ms": observation.duration_ms,
              "error": observation.error, "values": observation.values, "location": observation.location},
    ), EVIDENCE_TEXT))


def corroborated(session: Session, incident_id: int) -> bool:
    """Whether a finding of the workbench's own probes or rules is part of the incident, rather
    than only alerts from outside (whose labels are whatever their sender wrote)."""
    return session.exec(
        select(Finding.id).where(Finding.incident_id == incident_id, col(Finding.suppressed_by).is_(None),
                                 ~col(Finding.rule).startswith("alert:"))
    ).first() is not None


def open_incident_for(session: Session, correlation_key: str) -> Incident | None:
    """The open incident with the key, read afresh and locked until the transaction ends: every
    change of an incident's state, severity or counts takes its row first (``get(..., lock=True)``),
    so a finding never folds into an incident resolved at the same moment. On PostgreSQL, an
    incident resolved while this waited for its lock no longer matches, and two transactions
    that both find none cannot both open one (``uq_incident_open_key``): the second fails with a
    unique violation, for ``retry_conflict`` to run it again."""
    return session.exec(
        select(Incident).where(Incident.correlation_key == correlation_key, col(Incident.resolved_at).is_(None))
        .with_for_update().execution_options(populate_existing=True)
    ).first()


def _other_firing(session: Session, incident: Incident, finding: Finding) -> int | None:
    return session.exec(
        select(Finding.id).where(Finding.incident_id == incident.id, Finding.id != finding.id,
                                 col(Finding.recovered_at).is_(None), col(Finding.suppressed_by).is_(None))
    ).first()


def set_state(session: Session, incident: Incident, to_state: str, actor: str, now: datetime, reason: str) -> None:
    lifecycle.check_transition(incident.state, to_state, by_operator=False, reason=reason)
    previous = incident.state
    incident.state = to_state
    incident.updated_at = now
    if to_state == lifecycle.RESOLVED:
        incident.resolved_at = now
        _close_findings(session, incident, now)
    timeline(session, incident, now, actor, "transition", reason, from_state=previous, to_state=to_state)
    if to_state == lifecycle.RESOLVED:
        _withdraw_requests(session, incident, now)


def _withdraw_requests(session: Session, incident: Incident, now: datetime) -> None:
    """Actions waiting for a decision or for their run are of no use once the incident resolved:
    withdrawn, each with its reason on the timeline, and gone from the approvals inbox."""
    waiting = (lifecycle.RequestStatus.PENDING, lifecycle.RequestStatus.APPROVED)
    for request in session.exec(select(ActionRequest).where(ActionRequest.incident_id == incident.id,
                                                            col(ActionRequest.status).in_(waiting),
                                                            col(ActionRequest.started_at).is_(None))):
        was = request.status
        request.status = lifecycle.RequestStatus.WITHDRAWN
        request.decided_at = request.decided_at or now
        request.decision_reason = request.decision_reason or "withdrawn: the incident resolved"
        timeline(session, incident, now, SYSTEM, "action",
                  f"action request #{request.id} {request.action}: withdrawn ({was} when the incident resolved)")


def relapse(session: Session, incident: Incident, now: datetime) -> None:
    """Back to the state the incident was in before it started recovering."""
    entered = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id, TimelineEntry.to_state == lifecycle.RECOVERING)
        .order_by(col(TimelineEntry.id).desc())
    ).first()
    back = entered.from_state if entered and entered.from_state else lifecycle.OBSERVED
    set_state(session, incident, back, SYSTEM, now, "signal failed again while recovering")


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


def retitle(session: Session, incident_id: int | None, old: str, new: str) -> None:
    """An incident named after a finding that another replaced takes the new finding's name."""
    incident = None if incident_id is None else get(session, Incident, incident_id, lock=True)
    if incident is not None and incident.title == masked(session, old):
        incident.title = masked(session, new)


def timeline(session: Session, incident: Incident, now: datetime, actor: str, kind: str, message: str,
              from_state: str | None = None, to_state: str | None = None) -> None:
    session.add(TimelineEntry(incident_id=incident.id, at=now, actor=actor, kind=kind, message=masked(session, message),
                              from_state=from_state, to_state=to_state))


def acknowledge(session: Session, incident_id: int, actor: str, now: datetime, via: str | None = None) -> Incident:
    """Someone on call has taken the incident: escalation stops. Acknowledging twice changes nothing;
    a resolved incident cannot be acknowledged."""
    incident = get(session, Incident, incident_id, lock=True)
    if incident.resolved_at is not None:
        raise TransitionRefused(f"incident {incident_id} is resolved: there is nothing to acknowledge")
    if incident.acknowledged_at is None:
        incident.acknowledged_at, incident.acknowledged_by, incident.updated_at = now, actor, now
        timeline(session, incident, now, actor, "note", f"acknowledged by {actor}" + (f" ({via})" if via else ""))
    return incident


def add_incident_note(session: Session, incident_id: int, actor: str, message: str, now: datetime) -> None:
    timeline(session, get(session, Incident, incident_id), now, actor, "note", message)


def incident(session: Session, incident_id: int) -> Incident:
    return get(session, Incident, incident_id)


def open_incidents_with_findings(session: Session) -> list[tuple[Incident, list[Finding]]]:
    """Open incidents with the findings folded into them (not those they suppress)."""
    incidents = session.exec(select(Incident).where(col(Incident.resolved_at).is_(None))
                             .order_by(col(Incident.id))).all()
    findings: dict[int, list[Finding]] = {incident.id: [] for incident in incidents}
    for finding in session.exec(select(Finding).where(col(Finding.incident_id).in_(list(findings)),
                                                      col(Finding.suppressed_by).is_(None))):
        findings[finding.incident_id].append(finding)
    return [(incident, findings[incident.id]) for incident in incidents]



IMPORTED = "imported/"  # correlation keys of incidents recorded from another tool's export


@dataclass(frozen=True)
class PastIncident:
    """An outage recorded elsewhere (another incident tool's export), to score backtests against."""

    service: str
    title: str
    severity: str
    opened_at: datetime
    resolved_at: datetime
    labels: dict[str, str] = field(default_factory=dict)

    def key(self) -> str:
        """What makes it the same incident when imported again: its service, title and opening."""
        digest = hashlib.sha256(f"{self.service}\x1f{self.title}\x1f{self.opened_at.isoformat()}".encode())
        return IMPORTED + digest.hexdigest()[:32]


def import_incident(session: Session, past: PastIncident, origin: str, actor: str, now: datetime) -> bool:
    """Record ``past`` as a resolved incident with one finding (its labels), marked as imported
    (its correlation key starts with IMPORTED) from ``origin``; False when it was imported before."""
    key = past.key()
    if session.exec(select(Incident.id).where(Incident.correlation_key == key)).first() is not None:
        return False
    past = PastIncident(**masked(session, asdict(past)))
    incident = Incident(title=past.title, state=lifecycle.RESOLVED, severity=past.severity, service=past.service,
                        correlation_key=key, opened_at=past.opened_at, updated_at=now, last_seen_at=past.resolved_at,
                        resolved_at=past.resolved_at, finding_count=1)
    session.add(incident)
    session.flush()
    session.add(Finding(rule="import", target=past.service, service=past.service, severity=past.severity,
                        summary=past.title, correlation_key=key, first_seen=past.opened_at, last_seen=past.resolved_at,
                        recovered_at=past.resolved_at, incident_id=incident.id,
                        labels={**past.labels, "service": past.service, "severity": past.severity, "rule": "import"}))
    timeline(session, incident, past.opened_at, actor, "transition", f"opened: {past.title} (imported from {origin})",
             None, lifecycle.RESOLVED)
    timeline(session, incident, past.resolved_at, actor, "note", "resolved (as the export says)")
    return True


def findings_of(session: Session, incident_id: int) -> list[Finding]:
    """The incident's findings, oldest first (NotFound for an unknown incident)."""
    get(session, Incident, incident_id)
    return list(session.exec(select(Finding).where(Finding.incident_id == incident_id).order_by(col(Finding.id))))


def add_feedback(session: Session, finding_id: int, verdict: str, actor: str, reason: str | None,
                 now: datetime) -> None:
    """The operator's verdict on a finding, with a note on its incident's timeline."""
    finding = get(session, Finding, finding_id)
    session.add(mask(session, FindingFeedback(finding_id=finding_id, verdict=verdict, actor=actor, at=now,
                                              reason=reason), ("reason",)))
    if finding.incident_id is not None:
        timeline(session, get(session, Incident, finding.incident_id), now, actor, "note",
                 f"finding #{finding_id} ({finding.rule}) marked {verdict}" + (f": {reason}" if reason else ""))
