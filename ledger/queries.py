"""Reads of the ledger for the pages, the CLI and notebooks. Returns plain models, not rows,
masked: the secret values the engine knows (see ``ledger.db.with_secrets``), in any encoding,
and secret-shaped strings, so that rows an older release wrote unmasked show no secret either."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, computed_field
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from ledger import silences as silence_rules
from ledger.db import as_utc, known_secrets, read_session
from ledger.errors import NotFound
from ledger.lifecycle import OPEN_STATES, RunStatus
from ledger.tables import (
    Account,
    ActionRequest,
    Alert,
    ApiToken,
    AssistantCall,
    Evidence,
    Finding,
    FindingFeedback,
    FleetWorker,
    HypothesisRun,
    Incident,
    LogCursor,
    LoginEvent,
    Observation,
    RoutingDecision,
    Silence,
    TimelineEntry,
)
from policies.secrets import redact_data
from policies.selectors import matcher_from_dict

Shown = TypeVar("Shown", bound=BaseModel)


def _shown(session: Session, item: Shown) -> Shown:
    """``item`` with every string in it masked (secret values the engine knows, secret shapes)."""
    return item.model_validate(redact_data(item.model_dump(), known_secrets(session)))


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
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @computed_field
    @property
    def seconds_to_acknowledge(self) -> float | None:
        """Time from opening to acknowledgement (its mean over incidents: MTTA)."""
        return None if self.acknowledged_at is None else (self.acknowledged_at - self.opened_at).total_seconds()

    @computed_field
    @property
    def seconds_to_resolve(self) -> float | None:
        """Time from opening to resolution (its mean over incidents: MTTR)."""
        return None if self.resolved_at is None else (self.resolved_at - self.opened_at).total_seconds()


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
    severity: str
    summary: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    recovered_at: datetime | None
    suppressed_by: str | None = None
    feedback: str | None = None  # the operator's latest verdict (ledger.lifecycle.Verdict)


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
        return [_shown(session, IncidentSummary.model_validate(row, from_attributes=True))
                for row in session.exec(query)]


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
        said = _verdicts(session, [f.id for f in findings])
        return _shown(session, IncidentDetail(
            **IncidentSummary.model_validate(incident, from_attributes=True).model_dump(),
            timeline=[TimelineItem.model_validate(t, from_attributes=True) for t in timeline],
            evidence=[EvidenceItem(id=e.id, at=e.at, kind=e.kind, summary=e.summary, finding_id=e.finding_id,
                                   checks=e.data.get("checks", []), data=e.data) for e in evidence],
            findings=[FindingItem.model_validate(f, from_attributes=True).model_copy(update={"feedback": said.get(f.id)})
                      for f in findings],
            recent_observations=[ObservationItem.model_validate(o, from_attributes=True) for o in recent],
        ))


def _verdicts(session: Session, finding_ids: list[int]) -> dict[int, str]:
    """The operator's latest verdict on each of the findings that have one."""
    rows = session.exec(select(FindingFeedback).where(col(FindingFeedback.finding_id).in_(finding_ids))
                        .order_by(col(FindingFeedback.at), col(FindingFeedback.id))).all() if finding_ids else []
    return {row.finding_id: row.verdict for row in rows}


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
        return sorted(redact_data(session.exec(select(Incident.service).distinct()).all(), known_secrets(session)))


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
        items = [_shown(session, SilenceItem(**row.model_dump(), status=silence_rules.status(row, now)))
                 for row in rows]
    return [item for item in items if include_expired or item.status != "expired"]


class ServiceFinding(FindingItem):
    """A finding with its service and the incident it is on."""

    service: str
    incident_id: int | None


class SuppressedFinding(ServiceFinding):
    """A suppressed finding; ``incident_id`` is the parent incident that suppresses it, if that is the reason."""


def suppressed_findings(engine: Engine, limit: int = 100) -> list[SuppressedFinding]:
    """Findings a silence, a maintenance window or a parent incident keeps from opening an
    incident of their own: still firing first, then newest first."""
    query = (select(Finding).where(col(Finding.suppressed_by).is_not(None))
             .order_by(col(Finding.recovered_at).is_not(None), col(Finding.first_seen).desc(), col(Finding.id).desc())
             .limit(limit))
    with read_session(engine) as session:
        return [_shown(session, SuppressedFinding.model_validate(row, from_attributes=True))
                for row in session.exec(query)]


class SilencePreview(BaseModel):
    """What a silence with these matchers would cover now: the findings still firing (with the
    incident each is on, if any) and the targets of the policy whose findings it would keep silent."""

    findings: list[SuppressedFinding]
    targets: list[str]


def preview_silence(engine: Engine, matchers: list[dict], targets: list[dict[str, str]],
                    limit: int = 500) -> SilencePreview:
    """``targets``: the labels every target's findings carry (rule, target, service, severity, kind)."""
    parsed = [matcher_from_dict(m) for m in matchers]
    with read_session(engine) as session:
        firing = session.exec(select(Finding).where(col(Finding.recovered_at).is_(None))
                              .order_by(col(Finding.first_seen).desc(), col(Finding.id).desc())).all()
        covered = [_shown(session, SuppressedFinding.model_validate(f, from_attributes=True))
                   for f in firing if all(m.matches(f.labels) for m in parsed)][:limit]
    return SilencePreview(findings=covered,
                          targets=[t["target"] for t in targets if all(m.matches(t) for m in parsed)][:limit])


# --- hypotheses and LLM routing -------------------------------------------------------------

class RelatedIncident(IncidentSummary):
    targets: list[str]
    categories: list[str]
    opened_by: str | None = None  # the rule of its first finding: what failed first


def finding_labels(engine: Engine, incident_id: int) -> dict[int, dict]:
    """The labels of each finding of an incident, by finding id."""
    with read_session(engine) as session:
        rows = session.exec(select(Finding.id, Finding.labels).where(Finding.incident_id == incident_id)).all()
        return {finding_id: redact_data(labels, known_secrets(session)) for finding_id, labels in rows}


def incidents_in_window(engine: Engine, since: datetime, until: datetime, *, service: str | None = None,
                        correlation_key: str | None = None) -> list[RelatedIncident]:
    """Incidents open at some time in [since, until], oldest first, with their findings'
    targets and categories."""
    query = select(Incident).where(Incident.opened_at <= until,
                                   (col(Incident.resolved_at).is_(None)) | (col(Incident.resolved_at) >= since))
    if service is not None:
        query = query.where(Incident.service == service)
    if correlation_key is not None:
        query = query.where(Incident.correlation_key == correlation_key)
    with read_session(engine) as session:
        incidents = session.exec(query.order_by(col(Incident.opened_at), col(Incident.id))).all()
        findings = session.exec(select(Finding.incident_id, Finding.target, Finding.labels, Finding.rule)
                                .where(col(Finding.incident_id).in_([i.id for i in incidents]))
                                .order_by(col(Finding.id))).all()
        targets: dict[int, set[str]] = {}
        categories: dict[int, set[str]] = {}
        opened_by: dict[int, str] = {}
        for incident_id, target, labels, rule in findings:
            targets.setdefault(incident_id, set()).add(target)
            categories.setdefault(incident_id, set()).add(labels.get("category") or "other")
            opened_by.setdefault(incident_id, rule)
        return [_shown(session, RelatedIncident(**IncidentSummary.model_validate(i, from_attributes=True).model_dump(),
                                                targets=sorted(targets.get(i.id, ())),
                                                categories=sorted(categories.get(i.id, ())),
                                                opened_by=opened_by.get(i.id)))
                for i in incidents]


def recent_observations(engine: Engine, target: str, limit: int = 20) -> list[ObservationItem]:
    with read_session(engine) as session:
        rows = session.exec(select(Observation).where(Observation.target == target)
                            .order_by(col(Observation.started_at).desc()).limit(limit)).all()
        return [_shown(session, ObservationItem.model_validate(row, from_attributes=True)) for row in rows]


class DecisionItem(BaseModel):
    """The stable JSON shape of a routing decision (``workbench routing decisions``)."""

    id: int
    at: datetime
    source: str
    origin: str | None
    request_id: str | None
    task: str
    incident_id: int | None
    category: str | None
    route: list[str]
    expected: str | None
    declared: str | None
    actual: str | None
    reason: str
    detail: str
    attempts: list[dict]
    privacy_refusals: int
    latency_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    cost: float


def routing_decisions(engine: Engine, *, since: datetime | None = None, until: datetime | None = None,
                      tasks: list[str] | None = None, limit: int | None = None,
                      incident_id: int | None = None) -> list[DecisionItem]:
    """Routing decisions in [since, until] (of one incident, if given), newest first; all of them unless ``limit``."""
    query = select(RoutingDecision)
    if incident_id is not None:
        query = query.where(RoutingDecision.incident_id == incident_id)
    if since is not None:
        query = query.where(RoutingDecision.at >= since)
    if until is not None:
        query = query.where(RoutingDecision.at <= until)
    if tasks:
        query = query.where(col(RoutingDecision.task).in_(tasks))
    query = query.order_by(col(RoutingDecision.at).desc(), col(RoutingDecision.id).desc())
    if limit is not None:
        query = query.limit(limit)
    with read_session(engine) as session:
        return [_shown(session, DecisionItem.model_validate(row, from_attributes=True)) for row in session.exec(query)]


def routing_decision(engine: Engine, decision_id: int) -> DecisionItem:
    with read_session(engine) as session:
        row = session.get(RoutingDecision, decision_id)
        if row is None:
            raise NotFound(f"no routing decision with id {decision_id}")
        return _shown(session, DecisionItem.model_validate(row, from_attributes=True))


def tokens_used(engine: Engine, task: str, since: datetime) -> int:
    """Tokens the workbench's own calls for ``task`` used since ``since``."""
    with read_session(engine) as session:
        total = session.exec(select(func.coalesce(func.sum(RoutingDecision.tokens), 0))
                             .where(RoutingDecision.task == task, RoutingDecision.source == "workbench",
                                    RoutingDecision.at >= since)).one()
    return int(total)


def imported_keys(engine: Engine, keys: list[str]) -> set[str]:
    """Which of ``keys`` are external keys of decisions already imported."""
    with read_session(engine) as session:
        return set(session.exec(select(RoutingDecision.external_key)
                                .where(col(RoutingDecision.external_key).in_(keys))).all())


class HypothesisRunItem(BaseModel):
    id: int
    incident_id: int
    status: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    evidence_key: str | None
    draft: dict
    refinement: dict | None
    reason: str | None
    decision_id: int | None


def latest_hypothesis_runs(engine: Engine, incident_ids: list[int]) -> dict[int, HypothesisRunItem]:
    """The newest refinement run of each incident that has one."""
    newest = (select(HypothesisRun.incident_id, func.max(HypothesisRun.id).label("id"))
              .where(col(HypothesisRun.incident_id).in_(incident_ids)).group_by(HypothesisRun.incident_id)
              .subquery())
    with read_session(engine) as session:
        rows = session.exec(select(HypothesisRun).join(newest, HypothesisRun.id == newest.c.id)).all()
        return {row.incident_id: _shown(session, HypothesisRunItem.model_validate(row, from_attributes=True))
                for row in rows}


def hypothesis_runs(engine: Engine, incident_id: int) -> list[HypothesisRunItem]:
    """Every refinement run of an incident, oldest first."""
    with read_session(engine) as session:
        rows = session.exec(select(HypothesisRun).where(HypothesisRun.incident_id == incident_id)
                            .order_by(col(HypothesisRun.id))).all()
        return [_shown(session, HypothesisRunItem.model_validate(row, from_attributes=True)) for row in rows]


def pending_hypothesis_runs(engine: Engine) -> list[HypothesisRunItem]:
    """Refinements requested and not started yet, oldest first."""
    with read_session(engine) as session:
        rows = session.exec(select(HypothesisRun).where(HypothesisRun.status == RunStatus.PENDING)
                            .order_by(col(HypothesisRun.id))).all()
        return [_shown(session, HypothesisRunItem.model_validate(row, from_attributes=True)) for row in rows]


class ActionRequestItem(BaseModel):
    """The stable JSON shape of an action request (``workbench approvals list --format json``)."""

    id: int
    incident_id: int
    incident_title: str
    incident_state: str
    action: str
    parameters: dict
    risk: str
    runner: str
    plan: str
    needs_approval: bool
    status: str
    reason: str
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    gate: list[dict]
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    approval_id: str | None
    approval_token: str | None
    approval_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    output: str | None
    verification: str | None


def list_action_requests(engine: Engine, *, statuses: list[str] | None = None, incident_id: int | None = None,
                         limit: int = 200) -> list[ActionRequestItem]:
    """Action requests (of one incident, if given) with their incident's title and state, newest first."""
    query = select(ActionRequest, Incident).join(Incident, Incident.id == ActionRequest.incident_id)
    if statuses:
        query = query.where(col(ActionRequest.status).in_(statuses))
    if incident_id is not None:
        query = query.where(ActionRequest.incident_id == incident_id)
    query = query.order_by(col(ActionRequest.id).desc()).limit(limit)
    with read_session(engine) as session:
        return [_action_request_item(session, request, incident) for request, incident in session.exec(query)]


def action_request(engine: Engine, request_id: int) -> ActionRequestItem:
    with read_session(engine) as session:
        request = session.get(ActionRequest, request_id)
        if request is None:
            raise NotFound(f"no action request with id {request_id}")
        return _action_request_item(session, request, session.get(Incident, request.incident_id))


def _action_request_item(session: Session, request: ActionRequest, incident: Incident) -> ActionRequestItem:
    return _shown(session, ActionRequestItem(**request.model_dump(), incident_title=incident.title,
                                             incident_state=incident.state))


def ready_action_requests(engine: Engine) -> list[int]:
    """Ids of requests approved (or needing no approval) that have not run yet, oldest first."""
    with read_session(engine) as session:
        return list(session.exec(select(ActionRequest.id).where(ActionRequest.status == "approved")
                                 .order_by(col(ActionRequest.id))).all())


def action_request_counts(engine: Engine) -> dict[str, int]:
    """Action requests by status."""
    with read_session(engine) as session:
        return dict(session.exec(select(ActionRequest.status, func.count()).group_by(ActionRequest.status)).all())


class RuleHistory(BaseModel):
    """What a detector rule did live in a time range: its findings' episodes (first seen, recovered),
    and the incidents it alone opened (every finding in them is its own)."""

    episodes: list[tuple[datetime, datetime | None]]
    verdicts: list[str | None]  # the operator's latest on each episode's finding
    incident_ids: set[int]  # of its findings
    own_incidents: set[int]


def rule_history(engine: Engine, rule: str, since: datetime, until: datetime) -> RuleHistory:
    """``rule`` as findings name it (``rule:NAME``)."""
    with read_session(engine) as session:
        findings = session.exec(select(Finding).where(Finding.rule == rule, Finding.first_seen <= until,
                                                      (col(Finding.recovered_at).is_(None))
                                                      | (col(Finding.recovered_at) >= since))
                                .order_by(col(Finding.first_seen), col(Finding.id))).all()
        ids = {f.incident_id for f in findings if f.incident_id is not None}
        others = set(session.exec(select(Finding.incident_id).where(col(Finding.incident_id).in_(ids),
                                                                    Finding.rule != rule)).all()) if ids else set()
        said = _verdicts(session, [f.id for f in findings])
    return RuleHistory(episodes=[(as_utc(f.first_seen), f.recovered_at and as_utc(f.recovered_at)) for f in findings],
                       verdicts=[said.get(f.id) for f in findings], incident_ids=ids, own_incidents=ids - others)



# --- forensics: the ledger over a time range ------------------------------------------------

def findings_in_window(engine: Engine, since: datetime, until: datetime) -> list[ServiceFinding]:
    """Findings firing at some time in [since, until] (suppressed ones too), oldest first, with the
    operator's latest verdict on each."""
    query = (select(Finding).where(Finding.first_seen <= until,
                                   col(Finding.recovered_at).is_(None) | (col(Finding.recovered_at) >= since))
             .order_by(col(Finding.first_seen), col(Finding.id)))
    with read_session(engine) as session:
        rows = session.exec(query).all()
        said = _verdicts(session, [f.id for f in rows])
        return [_shown(session, ServiceFinding.model_validate(row, from_attributes=True)
                       .model_copy(update={"feedback": said.get(row.id)})) for row in rows]


class IncidentTimelineItem(TimelineItem):
    incident_id: int


def transitions(engine: Engine, incident_ids: list[int]) -> list[IncidentTimelineItem]:
    """The state changes of the incidents, in order per incident."""
    if not incident_ids:
        return []
    query = (select(TimelineEntry).where(col(TimelineEntry.incident_id).in_(incident_ids),
                                         col(TimelineEntry.to_state).is_not(None))
             .order_by(col(TimelineEntry.incident_id), col(TimelineEntry.at), col(TimelineEntry.id)))
    with read_session(engine) as session:
        return [_shown(session, IncidentTimelineItem.model_validate(row, from_attributes=True))
                for row in session.exec(query)]


class AlertItem(BaseModel):
    """One alert episode from Alertmanager, as the ledger keeps it (masked)."""

    id: int
    fingerprint: str
    alertname: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict
    annotations: dict
    origin: str
    deliveries: int
    first_received: datetime
    last_received: datetime
    finding_id: int | None
    incident_id: int | None = None


def alerts(engine: Engine, *, incident_id: int | None = None, since: datetime | None = None,
           until: datetime | None = None) -> list[AlertItem]:
    """Alert episodes (of one incident's findings, firing at some time in [since, until], if given),
    oldest first, with the incident each one's finding is on."""
    query = select(Alert, Finding.incident_id).join(Finding, Finding.id == Alert.finding_id, isouter=True)
    if incident_id is not None:
        query = query.where(Finding.incident_id == incident_id)
    if until is not None:
        query = query.where(Alert.starts_at <= until)
    if since is not None:
        query = query.where(col(Alert.ends_at).is_(None) | (col(Alert.ends_at) >= since))
    with read_session(engine) as session:
        return [_shown(session, AlertItem(**alert.model_dump(), incident_id=owner))
                for alert, owner in session.exec(query.order_by(col(Alert.starts_at), col(Alert.id)))]


class AssistantCallItem(BaseModel):
    at: datetime
    tool: str
    arguments: dict
    caller: str
    outcome: str
    bytes: int
    detail: str


def assistant_calls(engine: Engine, limit: int = 50) -> list[AssistantCallItem]:
    """The latest calls assistants made to the MCP tools, newest first."""
    with read_session(engine) as session:
        rows = session.exec(select(AssistantCall).order_by(col(AssistantCall.id).desc()).limit(limit)).all()
        return [_shown(session, AssistantCallItem.model_validate(row, from_attributes=True)) for row in rows]


class AccountItem(BaseModel):
    """A local account as ``workbench users list`` shows it: never its hash or TOTP secret."""

    name: str
    role: str
    totp: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    created_by: str


def accounts(engine: Engine) -> list[AccountItem]:
    with read_session(engine) as session:
        return [AccountItem(totp=row.totp_secret is not None, **row.model_dump(exclude={"totp_secret", "password_hash"}))
                for row in session.exec(select(Account).order_by(Account.name)).all()]


class LoginItem(BaseModel):
    at: datetime
    name: str
    method: str
    outcome: str
    detail: str


def logins(engine: Engine, limit: int = 50) -> list[LoginItem]:
    """The latest logins to the web app, let in or refused, and logouts; newest first."""
    with read_session(engine) as session:
        rows = session.exec(select(LoginEvent).order_by(col(LoginEvent.id).desc()).limit(limit)).all()
        return [_shown(session, LoginItem.model_validate(row, from_attributes=True)) for row in rows]


class ApiTokenItem(BaseModel):
    """An API token as ``workbench tokens list`` shows it: never the token or its hash."""

    name: str
    scopes: list[str]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


def api_tokens(engine: Engine) -> list[ApiTokenItem]:
    with read_session(engine) as session:
        return [ApiTokenItem.model_validate(row, from_attributes=True)
                for row in session.exec(select(ApiToken).order_by(ApiToken.name)).all()]


def recorded_runs(engine: Engine, slot_keys: dict[str, str]) -> set[str]:
    """Which of the targets in ``slot_keys`` (target -> its run's slot key) have that run recorded."""
    if not slot_keys:
        return set()
    with read_session(engine) as session:
        rows = session.exec(select(Observation.target, Observation.slot_key).where(
            col(Observation.target).in_(list(slot_keys)), col(Observation.slot_key).in_(set(slot_keys.values())))).all()
    return {target for target, key in rows if slot_keys.get(target) == key}


def live_locations(engine: Engine, since: datetime) -> set[str]:
    """The locations with a worker that heartbeat since ``since`` and did not stop."""
    with read_session(engine) as session:
        return set(session.exec(select(FleetWorker.location).where(
            col(FleetWorker.heartbeat_at) >= since, col(FleetWorker.stopped_at).is_(None))).all())


class FleetWorkerItem(BaseModel):
    """A worker of the fleet as ``workbench workers list`` and the Overview page show it."""

    name: str
    location: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    house: bool
    buckets: int
    targets: int
    probes_per_second: float
    lag_p99_seconds: float
    policy_digest: str
    silent: bool  # no heartbeat for fleet.dead_after, and it did not stop on purpose


def fleet_workers(engine: Engine, now: datetime, dead_after) -> list[FleetWorkerItem]:
    """The fleet's workers, by location and name: the live ones, the silent ones, the stopped ones."""
    with read_session(engine) as session:
        rows = session.exec(select(FleetWorker).order_by(FleetWorker.location, FleetWorker.name)).all()
        items = []
        for row in rows:
            times = {name: as_utc(getattr(row, name)) for name in ("started_at", "heartbeat_at")}
            silent = row.stopped_at is None and now - times["heartbeat_at"] > dead_after
            # a silent worker's last word on the house duties is stale: another holds them by now
            items.append(FleetWorkerItem(**{**row.model_dump(exclude={"dead_finding_id", "house"}), **times},
                                         house=row.house and not silent, silent=silent))
        return items
