"""Remediation: action requests through proposal, decision, run and verification, and spent
approval tokens; each step on the incident's timeline. What a request says (its parameters,
plan, gate checks, reasons and output) is masked, secret values and shapes, as it is kept: a
secret parameter stays its ``${NAME}`` reference."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from ledger import lifecycle
from ledger.repo.incidents import add_evidence, set_state, timeline
from ledger.repo.observations import add_observation
from ledger.repo.rows import SYSTEM, get, mask
from ledger.tables import ActionRequest, ApprovalUse, Incident, Observation

REQUEST_TEXT = ("parameters", "plan", "gate", "reason", "decision_reason", "output")


def add_action_request(session: Session, request: ActionRequest, message: str) -> ActionRequest:
    """Record a proposed action; its incident's timeline says who proposed it and what the gate made of it."""
    session.add(mask(session, request, REQUEST_TEXT))
    session.flush()
    _action_timeline(session, request, request.proposed_by, request.proposed_at, message)
    return request


def update_action_request(session: Session, request: ActionRequest, actor: str, now: datetime, message: str,
                          **changes) -> ActionRequest:
    """Move a request on (status and what goes with it); the timeline says who and why."""
    for name, value in changes.items():
        setattr(request, name, value)
    mask(session, request, REQUEST_TEXT)
    _action_timeline(session, request, actor, now, message)
    return request


def action_request(session: Session, request_id: int) -> ActionRequest:
    return get(session, ActionRequest, request_id)


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


def action_verified(session: Session, request: ActionRequest, observations: list[Observation], verdict: str,
                    to_state: str | None, message: str, now: datetime) -> Incident:
    """Keep the verification probes as evidence; move the incident to ``to_state`` when given
    and the lifecycle allows it, else say on the timeline where it stays."""
    incident = get(session, Incident, request.incident_id)
    for observation in observations:
        add_observation(session, observation)
        add_evidence(session, incident, None, observation, now)
    request.verification = verdict
    text = f"action request #{request.id} {request.action}: {message}"
    if to_state is not None and to_state in lifecycle.TRANSITIONS[incident.state]:
        set_state(session, incident, to_state, SYSTEM, now, text)
    else:
        _action_timeline(session, request, SYSTEM, now, f"{message}; the incident stays {incident.state}")
    return incident


def _action_timeline(session: Session, request: ActionRequest, actor: str, now: datetime, message: str) -> None:
    timeline(session, get(session, Incident, request.incident_id), now, actor, "action",
              f"action request #{request.id} {request.action}: {message}")

