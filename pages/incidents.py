"""Incidents: the list (filter by state, severity, service) and the detail of one incident
with its timeline and evidence; the operator works it from here, and says whether its findings
were useful, noise or expected. Refreshes itself."""

import streamlit as st

from app.hypotheses_ui import render_hypotheses
from app.operator import acknowledge, act, available_actions, feedback, needs_reason
from app.ui import SEVERITY_ICONS, actor, engine, error_boundary, state_badge
from ledger import notifications, queries
from ledger.lifecycle import OPEN_STATES, OPERATOR_ACTIONS, STATES, Verdict

REFRESH = "5s"
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")

st.title("Incidents")
with error_boundary("Loading services"):
    services = queries.services(engine())
filters = st.columns([3, 1, 1])
states = filters[0].multiselect("State", STATES, default=list(OPEN_STATES), key="filter_state")
severities = filters[1].multiselect("Severity", ["critical", "warning", "info"], key="filter_severity")
chosen_services = filters[2].multiselect("Service", services, key="filter_service")


def render_action(incident_id: int, action: str, allowed: bool) -> None:
    """Every action keeps its place; the ones the lifecycle does not allow now are disabled."""
    if not needs_reason(action):
        if st.button(action.title(), key=f"{action}-{incident_id}", disabled=not allowed):
            with error_boundary(f"{action.title()} incident {incident_id}"):
                state = act(engine(), incident_id, action, None, actor=actor())
                st.toast(f"Incident {incident_id} is now {state}")
                st.rerun()
        return
    noun = "note" if action == "resolve" else "reason"
    with st.popover(f"{action.title()} with a {noun}", disabled=not allowed):
        with st.form(f"{action}-form-{incident_id}", clear_on_submit=True):
            reason = st.text_area(noun.title(), key=f"{action}-reason-{incident_id}")
            if st.form_submit_button(action.title()):
                with error_boundary(f"{action.title()} incident {incident_id}"):
                    state = act(engine(), incident_id, action, reason, actor=actor())
                    st.toast(f"Incident {incident_id} is now {state}")
                    st.rerun()


def render_acknowledge(detail: queries.IncidentDetail) -> None:
    """Take the incident: its escalation stops. Done once; a resolved incident needs none."""
    taken = detail.acknowledged_at is not None or detail.resolved_at is not None
    if st.button("Acknowledged" if detail.acknowledged_at else "Acknowledge", key=f"ack-{detail.id}",
                 disabled=taken, type="secondary" if taken else "primary", icon=":material/front_hand:"):
        with error_boundary(f"Acknowledge incident {detail.id}"):
            acknowledge(engine(), detail.id, actor=actor(), via="web app")
            st.toast(f"Incident {detail.id} acknowledged: its escalation stops")
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
    if not findings:
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
                st.toast(f"Finding #{finding} marked {verdict}")
                st.rerun()


def render_detail(incident_id: int) -> None:
    detail = queries.incident_detail(engine(), incident_id)
    st.subheader(f"Incident #{detail.id}")
    st.markdown(f"`{detail.title}`")
    st.markdown(
        f"{state_badge(detail.state)} {SEVERITY_ICONS.get(detail.severity, '')} **{detail.severity}** · "
        f"service **{detail.service}** · key `{detail.correlation_key}` · {detail.finding_count} finding(s) · "
        f"opened {detail.opened_at:%Y-%m-%d %H:%M:%S} UTC · last seen {detail.last_seen_at:%H:%M:%S} UTC"
        + (f" · resolved {detail.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if detail.resolved_at else "")
        + (f" · acknowledged by **{detail.acknowledged_by}** {detail.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC"
           if detail.acknowledged_at else "")
    )
    allowed = available_actions(detail.state)
    with st.container(horizontal=True):
        render_acknowledge(detail)
        for action in OPERATOR_ACTIONS:
            render_action(detail.id, action, action in allowed)
    timeline, evidence, findings, observations, hypotheses, sent = st.tabs(
        ["Timeline", "Evidence", "Findings", "Recent probes", "Hypotheses", "Notifications"])
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
                st.markdown(f"**{item.at:%Y-%m-%d %H:%M:%S} UTC** · `{item.summary}`")
                for check in item.checks:
                    icon = ":green[✔]" if check["ok"] else ":red[✘]"
                    st.markdown(f"{icon} `{check['text']}`")
                if item.kind == "alert":
                    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(item.data.get("labels", {}).items()))
                    st.markdown(f"labels `{{{labels}}}`")
                    for name, text in sorted(item.data.get("annotations", {}).items()):
                        st.caption(f"{name}: {text}")
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


@st.fragment(run_every=REFRESH)
def render_incidents() -> None:
    with error_boundary("Loading incidents"):
        rows = queries.list_incidents(engine(), states=states, severities=severities, services=chosen_services)
        if not rows:
            st.info("No incidents match these filters.")
            return
        st.dataframe(
            [{"id": r.id, "state": r.state, "severity": r.severity, "service": r.service, "title": r.title,
              "findings": r.finding_count, "opened (UTC)": r.opened_at, "updated (UTC)": r.updated_at}
             for r in rows],
            hide_index=True, width="stretch", column_config={"opened (UTC)": WHEN, "updated (UTC)": WHEN},
        )
        labels = {r.id: f"#{r.id} · {r.state} · {r.title}" for r in rows}
        wanted = st.query_params.get("incident")
        ids = list(labels)
        index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in labels else 0
        chosen = st.selectbox("Incident", ids, index=index, format_func=labels.get, key="incident_select")
        st.query_params["incident"] = str(chosen)
        st.divider()
        render_detail(chosen)


render_incidents()
