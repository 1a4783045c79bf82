"""Incidents: the list (filter by state, severity, service; click a row to open one) and one
incident, the one the address names (``?incident=N``) whatever the filters: since when, how bad,
its golden signals around it, the action waiting for a decision, and everything to work it with.
With nothing open and none named, the overview of everything watched. Refreshes itself, and
never switches to another incident on its own."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from app.evidence_ui import render_evidence_item
from app.hypotheses_ui import render_hypotheses
from app.incident_dialogs import open_dialog, render_open_dialog
from app.incident_picture import render_picture
from app.operator import acknowledge, act, available_actions, feedback, needs_reason
from app.overview_ui import render_overview
from app.render import relative, span
from app.requests_ui import render_request
from app.review_ui import render_review
from app.ui import SEVERITY_ICONS, actor, confirm, engine, error_boundary, may, render_confirmation, state_badge
from ledger import notifications, queries
from ledger.db import utcnow
from ledger.errors import NotFound
from ledger.lifecycle import OPEN_STATES, OPERATOR_ACTIONS, STATES, RequestStatus, Verdict

REFRESH = "5s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
ROWS = "incident-rows"  # session state: the ids of the rows as last shown, and the table's generation

st.title("Incidents")
with error_boundary("Loading services"):
    services = queries.services(engine())
filters = st.columns([3, 1, 1])
states = filters[0].multiselect("State", STATES, default=list(OPEN_STATES), key="filter_state")
severities = filters[1].multiselect("Severity", ["critical", "warning", "info"], key="filter_severity")
chosen_services = filters[2].multiselect("Service", services, key="filter_service")
render_open_dialog()


def render_action(incident_id: int, action: str, allowed: bool) -> None:
    """Every action keeps its place; the ones the lifecycle does not allow now are disabled. One
    that needs a reason opens a dialog for that incident."""
    label = action.title() + ("…" if needs_reason(action) else "")
    if not st.button(label, key=f"{action}-{incident_id}", disabled=not allowed):
        return
    if needs_reason(action):
        open_dialog(action, incident_id)
    with error_boundary(f"{action.title()} incident {incident_id}"):
        state = act(engine(), incident_id, action, None, actor=actor())
        confirm(f"Incident #{incident_id} is now {state}")
        st.rerun()


def render_acknowledge(detail: queries.IncidentDetail) -> None:
    """Take the incident: its escalation stops. Done once; a resolved incident needs none."""
    taken = detail.acknowledged_at is not None or detail.resolved_at is not None
    if st.button("Acknowledged" if detail.acknowledged_at else "Acknowledge", key=f"ack-{detail.id}",
                 disabled=taken, type="secondary" if taken else "primary", icon=":material/front_hand:"):
        with error_boundary(f"Acknowledge incident {detail.id}"):
            acknowledge(engine(), detail.id, actor=actor(), via="web app")
            confirm(f"Incident #{detail.id} acknowledged: its escalation stops")
            st.rerun()


def render_findings(incident_id: int, findings: list[queries.FindingItem]) -> None:
    """Findings of dependent targets this incident suppresses are listed with it, marked with why;
    the operator says of each whether it was useful, noise or expected (backtests and rule
    suggestions read it)."""
    if suppressed := sum(1 for f in findings if f.suppressed_by):
        st.markdown(f":gray-badge[:material/notifications_off: suppressed] {suppressed} finding(s) of dependent "
                    "targets: linked to this incident while it is open, they open none of their own")
    st.dataframe([{"feedback": f.feedback or "", "suppressed by": f.suppressed_by or "",
                   **f.model_dump(exclude={"suppressed_by", "feedback"})} for f in findings],
                 hide_index=True, width="stretch")
    if not findings or not may("operator"):
        return
    with st.form(f"feedback-{incident_id}", clear_on_submit=True):
        st.markdown("**Was this worth an alert?** Your word tunes the rules learned from history.")
        left, middle, right = st.columns([2, 2, 3])
        finding = left.selectbox("Finding", [f.id for f in findings], key=f"feedback-finding-{incident_id}",
                                 format_func=lambda i: f"#{i} {next(f.rule for f in findings if f.id == i)}")
        verdict = middle.radio("Verdict", list(Verdict), horizontal=True, key=f"feedback-verdict-{incident_id}")
        reason = right.text_input("Why (optional)", key=f"feedback-reason-{incident_id}")
        if st.form_submit_button("Record"):
            with error_boundary(f"Feedback on finding #{finding}"):
                feedback(engine(), incident_id, verdict, actor=actor(), reason=reason or None, finding_id=finding)
                confirm(f"Finding #{finding} marked {verdict}")
                st.rerun()


def header_line(detail: queries.IncidentDetail, now: datetime) -> str:
    """Since when and how bad: state, severity, age, last failure, who has it."""
    end = detail.resolved_at or now
    parts = [f"{state_badge(detail.state)} {SEVERITY_ICONS.get(detail.severity, '')} **{detail.severity}**",
             f"service **{detail.service}**",
             (f"resolved {relative(detail.resolved_at, now)} after **{span((end - detail.opened_at).total_seconds())}**"
              if detail.resolved_at else f"open **{span((end - detail.opened_at).total_seconds())}**"),
             f"last failure **{relative(detail.last_seen_at, now)}**",
             f"{detail.finding_count} finding(s)"]
    parts.append(f"acknowledged by **{detail.acknowledged_by}** {relative(detail.acknowledged_at, now)}"
                 if detail.acknowledged_at else ":orange[not acknowledged]" if not detail.resolved_at else "")
    return " · ".join(p for p in parts if p)


def render_actions(detail: queries.IncidentDetail) -> None:
    allowed = available_actions(detail.state)
    with st.container(horizontal=True):
        render_acknowledge(detail)
        for action in OPERATOR_ACTIONS:
            render_action(detail.id, action, action in allowed)
        if st.button("Silence this…", key=f"silence-{detail.id}", icon=":material/notifications_off:"):
            open_dialog("silence", detail.id)


def render_detail(detail: queries.IncidentDetail, now: datetime) -> None:
    st.subheader(f"Incident #{detail.id}")
    st.markdown(f"`{detail.title}`")
    st.markdown(header_line(detail, now))
    st.caption(f"opened {detail.opened_at:%Y-%m-%d %H:%M:%S} UTC · key `{detail.correlation_key}`"
               + (f" · resolved {detail.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if detail.resolved_at else ""))
    if may("operator"):
        render_actions(detail)
    for request in queries.list_action_requests(engine(), statuses=[RequestStatus.PENDING], incident_id=detail.id):
        st.markdown("**Waiting for your decision**" if may("approver") else "**Waiting for an approver's decision**")
        render_request(request, now, with_incident=False)
    render_picture(detail, now)
    timeline, evidence, findings, observations, hypotheses, sent, review = st.tabs(
        ["Timeline", "Evidence", "Findings", "Recent probes", "Hypotheses", "Notifications", "Review"])
    with timeline:
        st.dataframe(
            [{"at (UTC)": t.at, "actor": t.actor, "kind": t.kind,
              "change": f"{t.from_state or '-'} → {t.to_state}" if t.to_state else "", "message": t.message}
             for t in detail.timeline],
            hide_index=True, width="stretch", column_config={"at (UTC)": WHEN},
        )
    with evidence:
        for item in reversed(detail.evidence):
            with st.container(border=True):
                render_evidence_item(item, key=str(item.id))
        if not detail.evidence:
            st.caption("No evidence recorded.")
    with findings:
        render_findings(detail.id, detail.findings)
    with observations:
        st.dataframe([o.model_dump() for o in detail.recent_observations], hide_index=True,
                     width="stretch")
    with hypotheses, error_boundary("Drafting hypotheses"):
        render_hypotheses(detail.id)
    with sent, error_boundary("Loading notifications"):
        rows = notifications.list_notifications(engine(), incident_id=detail.id)
        st.dataframe([{"at (UTC)": n.at, "channel": n.channel, "category": n.category, "status": n.status,
                       "attempts": n.attempts, "error": n.error or ""} for n in rows],
                     hide_index=True, width="stretch", column_config={"at (UTC)": WHEN})
        if not rows:
            st.caption("No notification about this incident (channels and routes: channels.yaml).")
    with review, error_boundary("Drafting the review"):
        render_review(detail.id)


def render_list(rows: list[queries.IncidentSummary], now: datetime) -> int | None:
    """The incidents as a table; a click on a row returns that incident (read against the rows as
    they were shown, so a refresh between showing and clicking cannot swap them)."""
    shown = st.session_state.setdefault(ROWS, {"ids": [], "generation": 0})
    event = st.dataframe(
        [{"id": r.id, "state": r.state, "severity": r.severity, "service": r.service, "title": r.title,
          "age": span(((r.resolved_at or now) - r.opened_at).total_seconds()), "findings": r.finding_count,
          "opened (UTC)": r.opened_at, "updated (UTC)": r.updated_at} for r in rows],
        hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        key=f"incident-table-{shown['generation']}",
        column_config={"opened (UTC)": WHEN, "updated (UTC)": WHEN})
    picked = None
    if event.selection.rows and event.selection.rows[0] < len(shown["ids"]):
        picked = shown["ids"][event.selection.rows[0]]
        shown["generation"] += 1  # the next table starts with no row selected
    shown["ids"] = [r.id for r in rows]
    return picked


def wanted_incident(rows: list[queries.IncidentSummary]) -> int | None:
    """The incident the address names; with none named, the newest open one listed, which the
    address then keeps, so that the page stays on it."""
    wanted = st.query_params.get("incident")
    if wanted is None:
        first = next((r.id for r in rows if r.resolved_at is None), None)
        if first is not None:
            st.query_params["incident"] = str(first)
        return first
    if not wanted.isdigit() or int(wanted) < 1:
        st.error(f"`?incident={wanted}` does not name an incident: it takes an incident number.")
        return None
    return int(wanted)


@st.fragment(run_every=REFRESH)
def render_incidents() -> None:
    now = utcnow()
    render_confirmation()
    with error_boundary("Loading incidents"):
        rows = queries.list_incidents(engine(), states=states, severities=severities, services=chosen_services)
        if rows:
            picked = render_list(rows, now)
            if picked is not None:
                st.query_params["incident"] = str(picked)
        else:
            st.info("No incidents match these filters.")
        chosen = wanted_incident(rows)
        if chosen is None:
            if not any(queries.open_incident_counts(engine()).values()):
                st.divider()
                render_overview()
            return
        st.divider()
        try:
            detail = queries.incident_detail(engine(), chosen)
        except NotFound:
            st.error(f"Incident #{chosen} does not exist. Pick one from the list above.")
            return
        render_detail(detail, now)


render_incidents()
