"""Proposals and the operator's decisions.

    propose / propose_recommended -> the policy gate -> refused, or pending (waiting for the
    operator), or approved at once when the action needs no approval
    approve (a signed, single-use token) | reject (with a reason) | expire_stale

Every step writes the request and a timeline entry on its incident in one transaction.
The worker runs what is approved (remediation/executor.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.db import read_session, write_session
from ledger.lifecycle import RequestStatus
from ledger.repo import actions, incidents, rows
from ledger.tables import ActionRequest, Finding
from policies.loader import Policy
from remediation import gate, tokens
from remediation.errors import GateRefused, RemediationError
from remediation.runners import plan


def propose(engine: Engine, policy: Policy, incident_id: int, action_id: str, parameters: Mapping[str, object], *,
            proposer: str, reason: str, now: datetime) -> ActionRequest:
    """Propose an action on an incident; GateRefused (after the refusal is recorded) if the gate says no."""
    with write_session(engine) as session:
        request = _propose(session, policy, incident_id, action_id, parameters, proposer, reason, now)
    if request.status == RequestStatus.REFUSED:
        raise GateRefused(f"action request #{request.id} refused by the gate: {_refusal(request.gate)}")
    return request


def propose_recommended(engine: Engine, policy: Policy, now: datetime) -> list[ActionRequest]:
    """Open incidents get the actions their findings' rules and categories recommend, each
    proposed once per incident (whatever became of it)."""
    if not (policy.actions.recommend or any(rule.recommend for rule in policy.rules.rules)):
        return []  # the policy recommends nothing: no need to read every open incident
    with read_session(engine) as session:
        if not _wanted(session, policy):
            return []
    with write_session(engine) as session:
        return [_propose(session, policy, incident_id, action_id, {}, rows.SYSTEM, why, now)
                for incident_id, action_id, why in _wanted(session, policy)]


def recommended(policy: Policy, findings: list[Finding]) -> dict[str, str]:
    """Action ids the findings' rules and categories recommend, each with why."""
    rules = {f"rule:{rule.name}": rule for rule in policy.rules.rules}
    wanted: dict[str, str] = {}
    for finding in findings:
        rule = rules.get(finding.rule)
        for action_id in rule.recommend if rule else ():
            wanted.setdefault(action_id, f"recommended by rule {rule.name}")
        category = finding.labels.get("category")
        for recommendation in policy.actions.recommend:
            if recommendation.category == category and recommendation.service in (None, finding.service):
                where = f" of {recommendation.service}" if recommendation.service else ""
                for action_id in recommendation.actions:
                    wanted.setdefault(action_id, f"recommended for {category} incidents{where}")
    return wanted


def _wanted(session: Session, policy: Policy) -> list[tuple[int, str, str]]:
    wanted = []
    for incident, findings in incidents.open_incidents_with_findings(session):
        if recommendations := recommended(policy, findings):
            proposed = actions.proposed_actions(session, incident.id)
            wanted += [(incident.id, action_id, why) for action_id, why in recommendations.items()
                       if action_id not in proposed]
    return wanted


def verdict(session: Session, policy: Policy, action_id: str, parameters: Mapping[str, object], incident_id: int,
            now: datetime) -> gate.Verdict:
    """The gate's answer for the action on the incident now, from the ledger's history."""
    incident = incidents.incident(session, incident_id)
    action = policy.actions.action(action_id)
    runs = [] if action is None else [
        gate.Run(run.parameters, run.started_at, run.incident_id)
        for run in actions.action_runs(session, action_id, incident_id, now - action.cooldown)]
    return gate.check(action, action_id, parameters, posture=policy.settings.posture, incident_id=incident_id,
                      incident_open=incident.resolved_at is None,
                      corroborated=incidents.corroborated(session, incident_id), runs=runs, now=now)


def _propose(session: Session, policy: Policy, incident_id: int, action_id: str, given: Mapping[str, object],
             proposer: str, reason: str, now: datetime) -> ActionRequest:
    checked = verdict(session, policy, action_id, given, incident_id, now)
    action = policy.actions.action(action_id)
    approval = action is None or gate.needs_approval(action, incidents.corroborated(session, incident_id))
    request = ActionRequest(
        incident_id=incident_id, action=action_id, parameters=checked.parameters,
        risk=action.risk if action else "unknown", runner=action.runner.kind if action else "unknown",
        plan=plan(action, checked.parameters) if action else "", needs_approval=approval,
        status=RequestStatus.PENDING, reason=reason, proposed_by=proposer, proposed_at=now,
        expires_at=now + policy.settings.approval_expiry, gate=[c.as_dict() for c in checked.checks],
    )
    said = f"proposed by {proposer} ({reason})"
    if not checked.ok:
        request.status = RequestStatus.REFUSED
        return actions.add_action_request(session, request, f"{said}; refused by the gate: {checked.refusal}")
    if approval:
        return actions.add_action_request(session, request, f"{said}; the gate let it through; waiting for the "
                                                         f"operator's approval until {_clock(request.expires_at)}")
    request.status, request.decided_by, request.decided_at = RequestStatus.APPROVED, rows.SYSTEM, now
    request.decision_reason = gate.approval_rule(action, corroborated=True)
    return actions.add_action_request(session, request, f"{said}; the gate let it through; runs without approval "
                                                     f"({request.decision_reason})")


def approve(engine: Engine, policy: Policy, key: bytes, request_id: int, *, actor: str, reason: str,
            now: datetime) -> ActionRequest:
    """Approve a pending request: the gate is asked again, then a single-use token, signed with
    ``key``, is issued for exactly this action, its parameters and the incident, good until
    ``approval_expiry`` from now. RemediationError says why not, after recording it."""
    reason = _reason(reason, "approving")
    with write_session(engine) as session:
        request = actions.action_request(session, request_id)
        refusal = _undecidable(session, policy, request, now, check_gate=True)
        if refusal is None:
            expires_at = now + policy.settings.approval_expiry
            claims = tokens.Claims(id=tokens.new_approval_id(), request=request.id, incident=request.incident_id,
                                   action=request.action, parameters=request.parameters, approved_by=actor,
                                   expires_at=expires_at.isoformat())
            actions.update_action_request(
                session, request, actor, now, f"approved by {actor}: {reason} (approval {claims.id}, good for one "
                                              f"run until {_clock(expires_at)})",
                status=RequestStatus.APPROVED, decided_by=actor, decided_at=now, decision_reason=reason, approval_id=claims.id,
                approval_token=tokens.sign(key, claims), approval_expires_at=expires_at)
    if refusal is not None:
        raise RemediationError(refusal)
    return request


def reject(engine: Engine, request_id: int, *, actor: str, reason: str, now: datetime) -> ActionRequest:
    """Reject a pending request with a reason; it never runs."""
    reason = _reason(reason, "rejecting")
    with write_session(engine) as session:
        request = actions.action_request(session, request_id)
        refusal = _undecidable(session, None, request, now, check_gate=False)
        if refusal is None:
            actions.update_action_request(session, request, actor, now, f"rejected by {actor}: {reason}",
                                       status=RequestStatus.REJECTED, decided_by=actor, decided_at=now, decision_reason=reason)
    if refusal is not None:
        raise RemediationError(refusal)
    return request


def expire_stale(engine: Engine, now: datetime) -> int:
    """Pending requests past their deadline expire; return how many."""
    with read_session(engine) as session:
        if not any(r.expires_at <= now for r in actions.action_requests(session, RequestStatus.PENDING)):
            return 0
    with write_session(engine) as session:
        stale = [r for r in actions.action_requests(session, RequestStatus.PENDING) if r.expires_at <= now]
        for request in stale:
            _expire(session, request, now)
    return len(stale)


def _undecidable(session: Session, policy: Policy | None, request: ActionRequest, now: datetime,
                 check_gate: bool) -> str | None:
    """Why the operator cannot decide on ``request`` now (recording an expiry or the gate's
    refusal), or None."""
    if request.status != RequestStatus.PENDING:
        return f"action request #{request.id} is {request.status}, not pending"
    if now >= request.expires_at:
        _expire(session, request, now)
        return f"action request #{request.id} expired at {_clock(request.expires_at)} without a decision"
    if check_gate:
        checked = verdict(session, policy, request.action, request.parameters, request.incident_id, now)
        request.gate = [c.as_dict() for c in checked.checks]
        if not checked.ok:
            actions.update_action_request(session, request, rows.SYSTEM, now,
                                       f"refused by the gate when approved: {checked.refusal}", status=RequestStatus.REFUSED)
            return f"action request #{request.id} refused by the gate: {checked.refusal}"
    return None


def _expire(session: Session, request: ActionRequest, now: datetime) -> None:
    actions.update_action_request(session, request, rows.SYSTEM, now,
                               f"expired: no decision by {_clock(request.expires_at)}", status=RequestStatus.EXPIRED)


def _reason(reason: str | None, doing: str) -> str:
    if not (reason and reason.strip()):
        raise RemediationError(f"{doing} an action request needs a reason")
    return reason.strip()


def _refusal(checks: list[dict]) -> str:
    return next(f"{c['check']}: {c['detail']}" for c in checks if not c["ok"])


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
