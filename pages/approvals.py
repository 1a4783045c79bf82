"""Approvals: the inbox of action requests waiting for the operator, each with its incident
and evidence, the exact action and parameters, the risk and what the policy gate checked,
to approve or reject with a reason; and the history of decisions, runs and verifications.
Refreshes itself. The worker runs what is approved; nothing runs from this page."""

import streamlit as st

from app import operator, settings
from app.render import moment
from app.ui import actor, engine, error_boundary, state_badge
from ledger import queries
from ledger.db import utcnow
from ledger.lifecycle import RequestStatus

REFRESH = "5s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
RISK_BADGES = {"read_only": ":green-badge[read-only]", "containment": ":orange-badge[containment]",
               "disruptive": ":red-badge[disruptive]"}
EVIDENCE_SHOWN = 3

st.title("Approvals")


def decide(request_id: int, verb: str, reason: str) -> None:
    if verb == "approve":
        operator.approve(engine(), settings.resolve(), request_id, actor=actor(), reason=reason, now=utcnow())
        st.toast(f"Action request #{request_id} approved: the worker runs it")
    else:
        operator.reject(engine(), request_id, actor=actor(), reason=reason, now=utcnow())
        st.toast(f"Action request #{request_id} rejected")
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


def render_request(item: queries.ActionRequestItem, now) -> None:
    with st.container(border=True):
        st.markdown(f"{RISK_BADGES.get(item.risk, ':gray-badge[unknown]')} **#{item.id} {item.action}** on "
                    f"[incident #{item.incident_id}](./?incident={item.incident_id}) {state_badge(item.incident_state)} "
                    f"`{item.incident_title}`")
        st.caption(f"Proposed by {item.proposed_by} {moment(item.proposed_at, now)}: {item.reason}. "
                   f"Decide by {moment(item.expires_at, now)}.")
        st.code(item.plan, language=None)
        if item.parameters:
            st.markdown(f"Parameters: `{parameters_text(item.parameters)}`")
        gate, evidence = st.columns(2)
        with gate:
            st.markdown("**What the gate checked**")
            render_gate(item.gate)
        with evidence:
            st.markdown("**Evidence**")
            render_evidence(item.incident_id)
        with st.form(f"decide-{item.id}"):
            reason = st.text_input("Reason", key=f"reason-{item.id}", placeholder="why (kept on the timeline)")
            approve, reject = st.columns(2)
            verb = ("approve" if approve.form_submit_button("Approve", type="primary")
                    else "reject" if reject.form_submit_button("Reject") else None)
        if verb:
            with error_boundary(f"{verb.title()} action request #{item.id}"):
                decide(item.id, verb, reason)


def render_history(rows: list[queries.ActionRequestItem]) -> None:
    if not rows:
        st.info("No decisions yet.")
        return
    st.dataframe(
        [{"id": r.id, "status": r.status, "action": r.action, "risk": r.risk,
          "incident": f"./?incident={r.incident_id}", "decided by": r.decided_by, "reason": r.decision_reason,
          "decided (UTC)": r.decided_at, "finished (UTC)": r.finished_at, "verification": r.verification,
          "output": r.output or "", "parameters": parameters_text(r.parameters), "approval": r.approval_id,
          "token": r.approval_token}
         for r in rows],
        hide_index=True, width="stretch",
        column_config={"decided (UTC)": WHEN, "finished (UTC)": WHEN,
                       "incident": st.column_config.LinkColumn(display_text=r"incident=(\d+)")},
    )


@st.fragment(run_every=REFRESH)
def render_approvals() -> None:
    now = utcnow()
    with error_boundary("Loading action requests"):
        rows = queries.list_action_requests(engine())
        pending = [r for r in rows if r.status == RequestStatus.PENDING]
        st.subheader(f"Waiting for you ({len(pending)})")
        if not pending:
            st.info("No action request is waiting for a decision.")
        for item in pending:
            render_request(item, now)
        st.subheader("History")
        render_history([r for r in rows if r.status != RequestStatus.PENDING])


render_approvals()
