"""The incident page's dialogs: an action that needs a reason (suppress, resolve) and "Silence this",
prefilled from the incident and showing what it would cover before it is created. A dialog acts on
the incident it was opened for, whatever the page shows meanwhile, and closes once it has acted;
the page then says what it did."""

from __future__ import annotations

import re

import streamlit as st

from app.operator import act, create_silence
from app.render import matchers_text
from app.ui import actor, confirm, engine, error_boundary, policy
from ledger import db, queries
from policies.errors import WorkbenchError
from policies.selectors import parse_matcher

OPEN = "incident-dialog"  # session state: (dialog, incident id) while one is open
PREVIEW_SHOWN = 20


def open_dialog(name: str, incident_id: int) -> None:
    st.session_state[OPEN] = (name, incident_id)
    st.rerun()


def render_open_dialog() -> None:
    """Called by the page outside its refreshing fragment, so a refresh never closes a dialog
    being filled in."""
    name, incident_id = st.session_state.get(OPEN) or (None, None)
    if name == "silence":
        silence_dialog(incident_id)
    elif name is not None:
        reason_dialog(name, incident_id)


def _closed() -> None:
    st.session_state.pop(OPEN, None)


def _done(message: str) -> None:
    _closed()
    confirm(message)
    st.rerun()


@st.dialog("Needs a reason", on_dismiss=_closed)
def reason_dialog(action: str, incident_id: int) -> None:
    noun = "note" if action == "resolve" else "reason"
    st.markdown(f"**{action.title()} incident #{incident_id}**")
    with st.form(f"{action}-form-{incident_id}"):
        reason = st.text_area(noun.title(), key=f"{action}-reason-{incident_id}")
        if st.form_submit_button(action.title(), type="primary"):
            with error_boundary(f"{action.title()} incident {incident_id}"):
                state = act(engine(), incident_id, action, reason, actor=actor())
                _done(f"Incident #{incident_id} is now {state}: {reason.strip()}")


def default_matchers(detail: queries.IncidentDetail) -> list[str]:
    """The incident's service, and its target (or targets) when its findings name them."""
    targets = sorted({f.target for f in detail.findings if not f.suppressed_by})
    found = [f'service="{detail.service}"']
    if len(targets) == 1:
        found.append(f'target="{targets[0]}"')
    elif targets:
        found.append(f'target=~"{"|".join(re.escape(t) for t in targets)}"')
    return found


def target_labels() -> list[dict[str, str]]:
    """The labels each target's findings carry, for the preview."""
    return [{"rule": f"probe:{t.kind}", "target": t.name, "service": t.service, "severity": t.severity,
             "kind": t.kind, "category": "availability"} for t in policy().targets]


@st.dialog("Silence this", width="large", on_dismiss=_closed)
def silence_dialog(incident_id: int) -> None:
    detail = queries.incident_detail(engine(), incident_id, observations=0)
    st.markdown(f"Findings whose labels match **every** line are kept but open no incident while the silence "
                f"is in force. Prefilled from incident #{incident_id} `{detail.title}`.")
    text = st.text_area("Matchers", value="\n".join(default_matchers(detail)), key=f"silence-this-{incident_id}",
                        help="One per line: KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        matchers = [parse_matcher(line).as_dict() for line in lines]
    except (ValueError, WorkbenchError) as exc:
        st.error(f"Matchers: {exc}")
        return
    if not matchers:
        st.error("Give at least one matcher: a silence of everything is never what was meant.")
        return
    render_preview(matchers)
    with st.form(f"silence-this-form-{incident_id}"):
        duration = st.text_input("Duration", value="2h", help="e.g. 30m, 2h, 1d",
                                 key=f"silence-this-duration-{incident_id}")
        comment = st.text_input("Comment", placeholder="why", key=f"silence-this-comment-{incident_id}")
        if st.form_submit_button("Create silence", type="primary"):
            with error_boundary("Create silence"):
                silence = create_silence(engine(), kind="silence", matchers=lines, duration=duration,
                                         comment=comment, author=actor(), now=db.utcnow())
                _done(f"Silence #{silence.id} created for {duration}: {{{matchers_text(silence.matchers)}}}")


def render_preview(matchers: list[dict]) -> None:
    found = queries.preview_silence(engine(), matchers, target_labels())
    st.markdown(f"**It would cover now:** {len(found.findings)} firing finding(s), {len(found.targets)} target(s) "
                f"of the policy")
    if found.findings:
        st.dataframe([{"finding": f.id, "incident": f.incident_id, "rule": f.rule, "target": f.target,
                       "severity": f.severity, "summary": f.summary} for f in found.findings[:PREVIEW_SHOWN]],
                     hide_index=True, width="stretch")
    if found.targets:
        shown = ", ".join(found.targets[:PREVIEW_SHOWN])
        more = f" and {len(found.targets) - PREVIEW_SHOWN} more" if len(found.targets) > PREVIEW_SHOWN else ""
        st.caption(f"Targets: {shown}{more}")
