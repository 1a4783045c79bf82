"""What an answer from a channel does: only an identity on the approvers list may give one, with a
button's nonce that exists, is meant for that verb, has not expired and was never spent; then it
goes through the same operator actions as the app (an approval through the gate and its
single-use token). Every answer, taken or refused, is recorded (channel_answer), and a refusal
about a known incident is noted on its timeline too."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from app import operator as act_as
from app.access import Identity
from ledger.db import write_session
from ledger.errors import TransitionRefused
from ledger.repo import incidents
from ledger.repo import notifications as outbox
from ledger.tables import ChannelPrompt
from notifications.answers import Answer
from policies.errors import WorkbenchError
from policies.loader import Policy
from remediation.errors import RemediationError

PURPOSE = {"approve": "approval", "reject": "approval", "ack": "acknowledge"}


def take_answer(engine: Engine, policy: Policy, data_dir: Path, answer: Answer, now: datetime) -> str:
    """Act on the answer if it may be taken; return what to show the person who gave it."""
    approver = policy.channels.approver(answer.channel, answer.identity)
    operator = approver.operator if approver else None
    via = f"from {answer.channel} by user {answer.identity}"
    with write_session(engine) as session:
        prompt = session.get(ChannelPrompt, answer.nonce) if answer.nonce else None
        refusal = _refusal(answer, approver is not None, prompt, now)
        if refusal is None and not outbox.claim_prompt(session, prompt.nonce, operator, answer.verb, now):
            refusal = f"this was already answered ({prompt.answer} by {prompt.answered_by})"
        if refusal is not None:
            _record(session, answer, operator, now, "refused", refusal)
            if prompt is not None and prompt.incident_id is not None:
                incidents.add_incident_note(session, prompt.incident_id, operator or answer.identity,
                                            f"answer {answer.verb!r} {via} refused: {refusal}", now)
            return f"Refused: {refusal}"
        request_id, incident_id = prompt.request_id, prompt.incident_id
    try:
        done = _act(engine, policy, data_dir, answer.verb, request_id, incident_id, operator, via, now)
    except (RemediationError, TransitionRefused, WorkbenchError) as exc:
        with write_session(engine) as session:
            _record(session, answer, operator, now, "refused", str(exc))
        return f"Refused: {exc}"
    with write_session(engine) as session:
        _record(session, answer, operator, now, "taken", done)
    return done


def _refusal(answer: Answer, allowed: bool, prompt: ChannelPrompt | None, now: datetime) -> str | None:
    if not allowed:
        return f"user {answer.identity} of {answer.channel} is not on the approvers list"
    if prompt is None or PURPOSE.get(answer.verb) != prompt.purpose:
        return "this button is unknown to the workbench (forged, or from another workbench)"
    if now >= prompt.expires_at:
        return "this button has expired"
    return None


def _act(engine: Engine, policy: Policy, data_dir: Path, verb: str, request_id: int | None, incident_id: int | None,
         operator: str, via: str, now: datetime) -> str:
    """Through the operator actions, as the approver the channel's list names (a person on the list
    answers for themselves: the button press is their login)."""
    identity = Identity(operator, "approver", via, now)
    if verb == "approve":
        act_as.approve(engine, policy, data_dir, request_id, actor=identity, reason=f"approved {via}", now=now)
        return f"Approved action request #{request_id} as {operator}: it runs at the next remediation pass"
    if verb == "reject":
        act_as.reject(engine, request_id, actor=identity, reason=f"rejected {via}", now=now)
        return f"Rejected action request #{request_id} as {operator}"
    act_as.acknowledge(engine, incident_id, actor=identity, via=via, now=now)
    return f"Acknowledged incident #{incident_id} as {operator}"


def _record(session, answer: Answer, operator: str | None, now: datetime, outcome: str, detail: str) -> None:
    outbox.record_answer(session, at=now, channel=answer.channel, identity=answer.identity, operator=operator,
                         answer=answer.verb, nonce=answer.nonce, outcome=outcome, detail=detail)
