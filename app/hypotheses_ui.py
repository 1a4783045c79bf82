"""The Hypotheses tab of an incident: the rules' draft and the model's refinement side by
side, with what the model changed, how its call was routed, and the plan's checks, which the
workbench runs itself. The model works in the worker; this tab only asks and shows progress."""

from __future__ import annotations

import streamlit as st

from app import settings
from app.operator import request_refinement
from app.ui import actor, engine, error_boundary, may, policy
from hypotheses import refine
from hypotheses.checks import run_check
from hypotheses.models import Draft, Hypothesis, Refinement
from ledger import queries
from ledger.db import utcnow
from ledger.lifecycle import RunStatus
from ledger.samples import SampleStore

TTL = 15  # seconds a draft is reused: evidence gathering reads the samples store
STATUS = {RunStatus.PENDING: "Waiting for the worker to take the request up…",
          RunStatus.RUNNING: "The model is working on it…"}



def store() -> SampleStore:
    return SampleStore(settings.resolve().samples_dir)


@st.cache_data(ttl=TTL, show_spinner=False)
def drafted(incident_id: int) -> Draft:
    return refine.incident_draft(engine(), store(), policy(), incident_id, utcnow())[1]


def render_hypotheses(incident_id: int) -> None:
    draft = drafted(incident_id)
    run = queries.latest_hypothesis_runs(engine(), [incident_id]).get(incident_id)
    left, right = st.columns(2)
    with left:
        st.markdown("#### Draft (rules)")
        st.caption(f"From {len(draft.evidence)} evidence item(s), {draft.since:%H:%M} → {draft.until:%H:%M} UTC")
        render_list(draft.hypotheses, draft, "draft")
    with right:
        st.markdown("#### Model refinement")
        render_refinement(incident_id, draft, run)
    with st.expander(f"Evidence ({len(draft.evidence)})"):
        st.dataframe([{"id": e.id, "kind": e.kind, "at (UTC)": e.at, "summary": e.summary} for e in draft.evidence],
                     hide_index=True, width="stretch")


def render_refinement(incident_id: int, draft: Draft, run: queries.HypothesisRunItem | None) -> None:
    busy = run is not None and run.status in STATUS
    if may("operator") and st.button("Ask the model" if run is None else "Ask the model again",
                                     key=f"refine-{incident_id}", disabled=busy or not draft.evidence):
        with error_boundary("Asking for a refinement"):
            request_refinement(engine(), incident_id, actor=actor(), now=utcnow())
            st.rerun()
    if run is None:
        st.caption("No refinement yet: the worker refines open incidents in the background, or ask for one.")
        return
    if busy:
        st.status(STATUS[run.status], state="running")
        return
    decision = queries.routing_decision(engine(), run.decision_id) if run.decision_id else None
    if decision is not None:
        st.caption(f"Routed to **{decision.actual or 'no provider'}** (route {' › '.join(decision.route) or '-'}; "
                   f"reason {decision.reason}) · {decision.latency_ms or 0:.0f} ms · {decision.tokens} tokens · "
                   f"decision #{decision.id}")
    if run.refinement is None:
        st.warning(f"No refinement: {run.reason}. The draft stands.")
        return
    refinement = Refinement.model_validate(run.refinement)
    changed = "; ".join(f"`{c.hypothesis_id}`: {c.what}" for c in refinement.changes) or "nothing"
    st.markdown(f"**What the model changed:** {changed}")
    render_list(refinement.hypotheses, draft, "model")


def render_list(hypotheses: list[Hypothesis], draft: Draft, side: str) -> None:
    if not hypotheses:
        st.info("No drafting rule holds for this evidence yet.")
    for n, h in enumerate(hypotheses, 1):
        with st.container(border=True):
            added = " :violet-badge[added by the model]" if h.source == "model" else ""
            st.markdown(f"**{n}. {h.title}**{added}")
            st.progress(h.confidence, text=f"confidence {h.confidence:.2f}")
            st.markdown(h.explanation)
            render_cited(h, draft)
            for i, check in enumerate(h.checks):
                render_check(draft, check, f"{side}-{draft.incident_id}-{h.id}-{i}")


def render_cited(hypothesis: Hypothesis, draft: Draft) -> None:
    """The evidence a hypothesis cites, each item with what it says (a rule's: its query and value)."""
    items = {e.id: e for e in draft.evidence}
    with st.expander(f"Evidence it cites ({len(hypothesis.evidence_ids)})"):
        for evidence_id in hypothesis.evidence_ids:
            item = items.get(evidence_id)
            st.markdown(f"`{evidence_id}` " + (item.summary if item else "(not in the draft's evidence)"))
            if item is not None and item.kind == "rule" and item.labels.get("query"):
                st.caption(f"query `{item.labels['query']}` · window {item.labels.get('window', '?')} · "
                           f"{item.labels.get('reduce', '?')} {item.labels.get('value', '?')} "
                           f"{item.labels.get('op', '')} {item.labels.get('threshold', '?')}")


def render_check(draft: Draft, check, key: str) -> None:
    if st.button(f"Check: {check.title}", key=f"check-{key}", type="tertiary", icon=":material/search:"):
        with error_boundary(f"Running {check.title!r}"):
            st.session_state[f"result-{key}"] = run_check(check, draft, engine(), store())
    if (result := st.session_state.get(f"result-{key}")) is not None:
        st.caption(result.summary)
        if result.rows:
            st.dataframe(result.rows, hide_index=True, width="stretch")
