"""What the operator does, the one way every surface (the CLI, the web app's pages) does it: act on
incidents, approve or reject action requests, add and expire silences. Each takes who acts as an
explicit argument: the CLI passes the local OS user, the web app its logged-in user or that."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

from sqlalchemy import Engine

from app.settings import Paths
from ledger.db import as_utc, utcnow, write_session
from ledger.errors import TransitionRefused
from ledger.lifecycle import OPERATOR_ACTIONS, REASON_REQUIRED, TRANSITIONS, Verdict
from ledger.repo import incidents, silences
from ledger.silences import recurrence
from ledger.tables import ActionRequest, Incident, Silence
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.schema import parse_duration
from policies.selectors import parse_matcher
from remediation import flow
from remediation.tokens import signing_key


def operator_name() -> str:
    """The local OS user: who acts from the CLI (and from a web app without login)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def act(engine: Engine, incident_id: int, action: str, reason: str | None, *, actor: str) -> str:
    """Apply one operator action; return the incident's new state."""
    if action not in OPERATOR_ACTIONS:
        raise TransitionRefused(f"unknown action {action!r}; actions are {', '.join(OPERATOR_ACTIONS)}")
    with write_session(engine) as session:
        return incidents.transition(session, incident_id, OPERATOR_ACTIONS[action], actor, reason, utcnow()).state


def acknowledge(engine: Engine, incident_id: int, *, actor: str, via: str | None = None) -> Incident:
    """Take the incident: whoever is on call has it, and its escalation stops."""
    with write_session(engine) as session:
        return incidents.acknowledge(session, incident_id, actor, utcnow(), via)


def needs_reason(action: str) -> bool:
    """Whether the lifecycle refuses ``action`` without a reason."""
    return OPERATOR_ACTIONS[action] in REASON_REQUIRED


def available_actions(state: str) -> list[str]:
    """Operator actions the lifecycle allows from ``state``, in a stable order."""
    return [action for action, target in OPERATOR_ACTIONS.items() if target in TRANSITIONS[state]]


def create_silence(engine: Engine, *, kind: str, matchers: list[str], duration: str, comment: str, author: str,
                   now: datetime, starts: str = "now", every: str | None = None, at: str | None = None,
                   days: list[str] | None = None, timezone: str | None = None, until: str | None = None) -> Silence:
    """Record a silence or a one-off maintenance window from ``starts`` for ``duration``, or (with
    ``every``) a recurring window, each occurrence ``duration`` long, until ``until`` or for good.
    WorkbenchError says what is wrong with the input."""
    try:
        length = parse_duration(duration)
        starts_at = parse_when(starts, now)
        rule, ends_at = None, starts_at + length
        if every:
            rule, ends_at = recurrence(every, at, length, timezone, days), parse_when(until, now) if until else None
        with write_session(engine) as session:
            return silences.add_silence(session, kind=kind, matchers=[parse_matcher(m).as_dict() for m in matchers],
                                    starts_at=starts_at, ends_at=ends_at, recurrence=rule, author=author,
                                    comment=comment, now=now)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None


def expire_silence(engine: Engine, silence_id: int, actor: str, now: datetime) -> Silence:
    """End a silence or maintenance window now (one that has already ended stays as it was)."""
    with write_session(engine) as session:
        return silences.expire_silence(session, silence_id, actor, now)


def approve(engine: Engine, paths: Paths, request_id: int, *, actor: str, reason: str, now: datetime) -> ActionRequest:
    """Approve a pending action request under the policy in force, signing its single-use token with
    the key of the environment or the data directory."""
    policy = load_policy(paths.policy_dir)
    key = signing_key(policy.settings.approval_key_env, paths.data_dir)
    return flow.approve(engine, policy, key, request_id, actor=actor, reason=reason, now=now)


def reject(engine: Engine, request_id: int, *, actor: str, reason: str, now: datetime) -> ActionRequest:
    """Reject a pending action request; it never runs."""
    return flow.reject(engine, request_id, actor=actor, reason=reason, now=now)


def feedback(engine: Engine, incident_id: int, verdict: str, *, actor: str, reason: str | None = None,
             finding_id: int | None = None, now: datetime | None = None) -> list[int]:
    """The operator's verdict (ledger.lifecycle.Verdict) on one finding of the incident, or on
    all of them; return the findings marked. Backtests and rule suggestions read it."""
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
            incidents.add_feedback(session, one, verdict, actor, reason, now)
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
