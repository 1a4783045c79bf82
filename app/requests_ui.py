"""An action request waiting for the operator, as the Approvals page and the incident page show
it: the exact action and parameters, the risk, the plan, what the policy gate checked, the latest
evidence, and Approve / Reject with a reason for an approver (a disruptive action asks a login older
than the policy allows to be confirmed first). The worker runs what is approved."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from app import operator, settings
from app.access import StepUpRequired
from app.login import confirm_again
from app.render import moment
from app.ui import actor, confirm, engine, error_boundary, may, policy, state_badge
from ledger import db, queries

RISK_BADGES = {"read_only": ":green-badge[read-only]", "containment": ":orange-badge[containment]",
               "disruptive": ":red-badge[disruptive]"}
EVIDENCE_SHOWN = 3
STEP_UP = "step-up"  # session state: (request id, reason) of an approval waiting for the login to be confirmed


def decide(request_id: int, verb: str, reason: str) -> None:
    if verb == "approve":
        try:
            operator.approve(engine(), policy(), settings.resolve().data_dir, request_id, actor=actor(), reason=reason,
                             now=db.utcnow())
        except StepUpRequired:
            st.session_state[STEP_UP] = (request_id, reason)
            st.rerun()
        st.session_state.pop(STEP_UP, None)
        confirm(f"Action request #{request_id} approved: the worker runs it")
    else:
        operator.reject(engine(), request_id, actor=actor(), reason=reason, now=db.utcnow())
        confirm(f"Action request #{request_id} rejected")
    st.rerun()


def parameters_text(parameters: dict) -> str:
    """name=value, ...; the ledger's queries mask secrets (a secret parameter holds only its
    ${NAME} reference)."""
    return ", ".join(f"{name}={value}" for name, value in parameters.items())


def render_gate(checks: list[dict]) -> None:
    for check in checks:
        icon = ":green[✔]" if check["ok"] else ":red[✘]"
        st.markdown(f"{icon} **{check['check']}**: {check['detail']}")


def render_evidence(incident_id: int) -> None:
    detail = queries.incident_detail(engine(), incident_id, observations=0)
    if not detail.evidence:
        st.caption("No evidence recorded yet.")
    for item in detail.evidence[-EVIDENCE_SHOWN:]:
        st.markdown(f"**{item.at:%H:%M:%S} UTC** · `{item.summary}`")
        for check in item.checks:
            st.markdown(f"{':green[✔]' if check['ok'] else ':red[✘]'} `{check['text']}`")


def render_request(item: queries.ActionRequestItem, now: datetime, with_incident: bool = True) -> None:
    """One pending request; ``with_incident``: its incident's link, state and evidence too (the
    incident page shows those itself)."""
    with st.container(border=True):
        on = (f" on [incident #{item.incident_id}](./?incident={item.incident_id}) "
              f"{state_badge(item.incident_state)} `{item.incident_title}`") if with_incident else ""
        st.markdown(f"{RISK_BADGES.get(item.risk, ':gray-badge[unknown]')} **#{item.id} {item.action}**{on}")
        st.caption(f"Proposed by {item.proposed_by} {moment(item.proposed_at, now)}: {item.reason}. "
                   f"Decide by {moment(item.expires_at, now)}.")
        st.code(item.plan, language=None)
        if item.parameters:
            st.markdown(f"Parameters: `{parameters_text(item.parameters)}`")
        gate, evidence = st.columns(2) if with_incident else (st.container(), None)
        with gate:
            st.markdown("**What the gate checked**")
            render_gate(item.gate)
        if evidence is not None:
            with evidence:
                st.markdown("**Evidence**")
                render_evidence(item.incident_id)
        if may("approver"):
            render_decision(item)
        else:
            st.caption("An approver decides this request.")


def render_decision(item: queries.ActionRequestItem) -> None:
    """Approve or reject with a reason; first the login confirmed again, when a step-up is due."""
    waiting = st.session_state.get(STEP_UP)
    if waiting and waiting[0] == item.id:
        if confirm_again(policy().settings.access, engine(), actor(), key=f"confirm-{item.id}") is not None:
            with error_boundary(f"Approve action request #{item.id}"):
                decide(item.id, "approve", waiting[1])
        elif st.button("Cancel", key=f"cancel-{item.id}", help="Back to approve or reject"):
            st.session_state.pop(STEP_UP, None)  # confirming would approve: without this, no way to reject
            st.rerun()
        return
    with st.form(f"decide-{item.id}"):
        reason = st.text_input("Reason", key=f"reason-{item.id}", placeholder="why (kept on the timeline)")
        approve, reject = st.columns(2)
        verb = ("approve" if approve.form_submit_button("Approve", type="primary")
                else "reject" if reject.form_submit_button("Reject") else None)
    if verb:
        with error_boundary(f"{verb.title()} action request #{item.id}"):
            decide(item.id, verb, reason)
