"""Approvals: the inbox of action requests waiting for the operator, each with its incident
and evidence, the exact action and parameters, the risk and what the policy gate checked,
to approve or reject with a reason; and the history of decisions, runs and verifications.
Refreshes itself. The worker runs what is approved; nothing runs from this page."""

import streamlit as st

from app.requests_ui import parameters_text, render_request
from app.ui import engine, error_boundary, may, render_confirmation
from ledger import queries
from ledger.db import utcnow
from ledger.lifecycle import RequestStatus

REFRESH = "5s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")

st.title("Approvals")


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
    render_confirmation()
    with error_boundary("Loading action requests"):
        rows = queries.list_action_requests(engine())
        pending = [r for r in rows if r.status == RequestStatus.PENDING]
        st.subheader(f"{'Waiting for you' if may('approver') else 'Waiting for an approver'} ({len(pending)})")
        if not pending:
            st.info("No action request is waiting for a decision.")
        for item in pending:
            render_request(item, now)
        st.subheader("History")
        render_history([r for r in rows if r.status != RequestStatus.PENDING])


render_approvals()
