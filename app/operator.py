"""What the operator does, the one way every surface (the CLI, the web app's pages, the channels,
API tokens) does it: act on incidents, propose, approve or reject action requests, add and expire
silences, decide rule suggestions. Each takes who acts (app.access.Identity) and checks their role
here, not only by hiding buttons: a viewer reads, an operator acts on incidents, silences and
suggestions, an approver also decides action requests. Every entry records the identity's name."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from app.access import Identity, StepUpRequired, require
from app.render import span
from hypotheses import refine
from hypotheses.imports import ImportReport as DecisionsReport
from hypotheses.imports import import_decisions
from learning import suggestions
from learning.imports import ImportReport, import_incidents
from ledger.db import as_utc, read_session, utcnow, write_session
from ledger.errors import TransitionRefused
from ledger.lifecycle import OPERATOR_ACTIONS, REASON_REQUIRED, TRANSITIONS, Verdict
from ledger.repo import actions, incidents, silences
from ledger.repo import notifications as outbox
from ledger.silences import recurrence
from ledger.tables import ActionRequest, Incident, Silence
from policies.errors import WorkbenchError
from policies.loader import Policy
from policies.routing import RoutingFile
from policies.schema import parse_duration
from policies.selectors import parse_matcher
from remediation import flow
from remediation.tokens import signing_key


def act(engine: Engine, incident_id: int, action: str, reason: str | None, *, actor: Identity) -> str:
    """Apply one operator action; return the incident's new state."""
    require(actor, "operator", f"{action} incidents")
    if action not in OPERATOR_ACTIONS:
        raise TransitionRefused(f"unknown action {action!r}; actions are {', '.join(OPERATOR_ACTIONS)}")
    with write_session(engine) as session:
        return incidents.transition(session, incident_id, OPERATOR_ACTIONS[action], actor.name, reason,
                                    utcnow()).state


def acknowledge(engine: Engine, incident_id: int, *, actor: Identity, via: str | None = None,
                now: datetime | None = None) -> Incident:
    """Take the incident: whoever is on call has it, and its escalation stops."""
    require(actor, "operator", "acknowledge incidents")
    with write_session(engine) as session:
        return incidents.acknowledge(session, incident_id, actor.name, now or utcnow(), via or actor.via)


def needs_reason(action: str) -> bool:
    """Whether the lifecycle refuses ``action`` without a reason."""
    return OPERATOR_ACTIONS[action] in REASON_REQUIRED


def available_actions(state: str) -> list[str]:
    """Operator actions the lifecycle allows from ``state``, in a stable order."""
    return [action for action, target in OPERATOR_ACTIONS.items() if target in TRANSITIONS[state]]


def create_silence(engine: Engine, *, kind: str, matchers: list[str], duration: str, comment: str, author: Identity,
                   now: datetime, starts: str = "now", every: str | None = None, at: str | None = None,
                   days: list[str] | None = None, timezone: str | None = None, until: str | None = None) -> Silence:
    """Record a silence or a one-off maintenance window from ``starts`` for ``duration``, or (with
    ``every``) a recurring window, each occurrence ``duration`` long, until ``until`` or for good.
    WorkbenchError says what is wrong with the input."""
    require(author, "operator", "add silences")
    try:
        length = parse_duration(duration)
        starts_at = parse_when(starts, now)
        rule, ends_at = None, starts_at + length
        if every:
            rule, ends_at = recurrence(every, at, length, timezone, days), parse_when(until, now) if until else None
        with write_session(engine) as session:
            return silences.add_silence(session, kind=kind, matchers=[parse_matcher(m).as_dict() for m in matchers],
                                    starts_at=starts_at, ends_at=ends_at, recurrence=rule, author=author.name,
                                    comment=comment, now=now)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None


def expire_silence(engine: Engine, silence_id: int, actor: Identity, now: datetime) -> Silence:
    """End a silence or maintenance window now (one that has already ended stays as it was)."""
    require(actor, "operator", "expire silences")
    with write_session(engine) as session:
        return silences.expire_silence(session, silence_id, actor.name, now)


def propose(engine: Engine, policy: Policy, incident_id: int, action_id: str, parameters: Mapping[str, object], *,
            actor: Identity, reason: str, now: datetime) -> ActionRequest:
    """Propose an action on an incident, for an approver to decide."""
    require(actor, "operator", "propose actions")
    return flow.propose(engine, policy, incident_id, action_id, parameters,
                        proposer=actor.name, reason=reason, now=now)


def approve(engine: Engine, policy: Policy, data_dir: Path, request_id: int, *, actor: Identity, reason: str,
            now: datetime) -> ActionRequest:
    """Approve a pending action request under the policy in force, signing its single-use token with
    the key of the environment or the data directory. With ``access:``, whoever proposed it may approve
    it only where the policy allows self-approval, and the reason recorded says so (without it there
    is one operator, the box's user);
    a disruptive action asks for a login younger than ``access.step_up_after``."""
    require(actor, "approver", "decide action requests")
    access = policy.settings.access
    with read_session(engine) as session:
        request = actions.action_request(session, request_id)
        proposer, action = request.proposed_by, policy.actions.action(request.action)
    if proposer == actor.name and access is not None:
        if not access.self_approval:
            raise WorkbenchError(f"{actor.name} proposed request #{request_id}: another approver decides it "
                                 "(access.self_approval is off)")
        reason = f"{reason} (self-approved: {actor.name} proposed it; access.self_approval allows it)"
    if (access is not None and action is not None and action.risk == "disruptive" and actor.authenticated_at
            and now - actor.authenticated_at > access.step_up_after):
        raise StepUpRequired(f"approving the disruptive action {request.action!r} takes a login younger than "
                             f"{span(access.step_up_after.total_seconds())}: confirm who you are again")
    key = signing_key(policy.settings.approval_key_env, data_dir)
    return flow.approve(engine, policy, key, request_id, actor=actor.name, reason=reason, now=now)


def reject(engine: Engine, request_id: int, *, actor: Identity, reason: str, now: datetime) -> ActionRequest:
    """Reject a pending action request; it never runs."""
    require(actor, "approver", "decide action requests")
    return flow.reject(engine, request_id, actor=actor.name, reason=reason, now=now)


def request_refinement(engine: Engine, incident_id: int, *, actor: Identity, now: datetime):
    """Ask the model for a refinement of the incident's hypotheses (the worker does it)."""
    require(actor, "operator", "ask for refinements")
    return refine.request(engine, incident_id, actor.name, now)


def accept_suggestion(engine: Engine, policy_dir, suggestion_id: int, *, actor: Identity, reason: str,
                      now: datetime, shadow: bool = False) -> int:
    """Put a learned rule suggestion in force (or in shadow); return its revision."""
    require(actor, "operator", "decide rule suggestions")
    return suggestions.accept(engine, policy_dir, suggestion_id, actor.name, reason, now, shadow=shadow)


def reject_suggestion(engine: Engine, suggestion_id: int, *, actor: Identity, reason: str, now: datetime) -> None:
    require(actor, "operator", "decide rule suggestions")
    suggestions.reject(engine, suggestion_id, actor.name, reason, now)


def roll_back_rule(engine: Engine, policy_dir, name: str, revision: int, *, actor: Identity, reason: str,
                   now: datetime) -> int:
    require(actor, "operator", "roll learned rules back")
    return suggestions.rollback(engine, policy_dir, name, revision, actor.name, reason, now)


def import_history(engine: Engine, data: bytes, origin: str, *, actor: Identity) -> ImportReport:
    """Incidents from another tool's export, for backtests and suggestions to learn from."""
    require(actor, "operator", "import incidents")
    return import_incidents(engine, data, origin, actor.name)


def import_routing_decisions(engine: Engine, data: bytes, origin: str, routing: RoutingFile, *,
                             actor: Identity) -> DecisionsReport:
    """LLM routing decisions another system logged, compared with the routing policy."""
    require(actor, "operator", "import routing decisions")
    return import_decisions(engine, data, origin, routing)


def mark_read(engine: Engine, notification_ids: list[int] | None, *, actor: Identity, now: datetime) -> int:
    """Notifications that reached no channel, read: they leave the inbox's count; return how many."""
    require(actor, "operator", "mark notifications read")
    with write_session(engine) as session:
        return outbox.mark_read(session, notification_ids, now)


def feedback(engine: Engine, incident_id: int, verdict: str, *, actor: Identity, reason: str | None = None,
             finding_id: int | None = None, now: datetime | None = None) -> list[int]:
    """The operator's verdict (ledger.lifecycle.Verdict) on one finding of the incident, or on
    all of them; return the findings marked. Backtests and rule suggestions read it."""
    require(actor, "operator", "give feedback on findings")
    if verdict not in set(Verdict):
        raise WorkbenchError(f"unknown verdict {verdict!r}: use {', '.join(Verdict)}")
    now = now or utcnow()
    with write_session(engine) as session:
        findings = incidents.findings_of(session, incident_id)
        marked = [f.id for f in findings if finding_id in (None, f.id)]
        if not marked:
            raise WorkbenchError(f"incident {incident_id} has no finding {finding_id}" if finding_id
                                 else f"incident {incident_id} has no findings")
        for one in marked:
            incidents.add_feedback(session, one, verdict, actor.name, reason, now)
    return marked


EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)  # times an operator means


def parse_when(text: str, now: datetime) -> datetime:
    """``now`` or an ISO 8601 time, UTC unless it carries an offset, from 1970 to 9000."""
    if text.strip().lower() == "now":
        return now
    try:
        when = as_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        raise ValueError(f"not a time: {text!r} (use ISO 8601, e.g. 2026-03-28T22:00Z, or now)") from None
    if not EARLIEST <= when < LATEST:
        raise ValueError(f"{text!r} is not a time between 1970 and 9000")
    return when
