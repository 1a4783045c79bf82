"""The pages under Streamlit's AppTest with access: in the policy, through the real st.navigation
entrypoint, on a real ledger: without a login only the login form shows, whatever page the
address names; a viewer reads every page and is offered no action, where an operator is; and an
action forged through a viewer's session (a dialog opened by its session state) is refused by the
operator layer, the page says so and the ledger is unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.access import Identity
from app.cli.serve import STREAMLIT_APP
from app.incident_dialogs import OPEN
from app.login import SESSION
from app.requests_ui import STEP_UP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from app.ui import CONFIRMATION
from ledger import queries
from ledger.db import open_ledger, sqlite_url, utcnow
from remediation import flow
from tests.remediation.support import open_incident, policy

SETTINGS = """
access:
  max_failed_logins: 3
"""
ACTIONS = """
actions:
  - id: restart-web
    runner: {kind: command, argv: [/bin/echo, restart]}
    risk: disruptive
    postures: [demo]
    enabled: true
"""
NAMES = {"viewer": "vera", "operator": "otto", "approver": "april"}
SILENCE_FORMS = {"FormSubmitter:silence-form-Create silence", "FormSubmitter:maintenance-form-Create maintenance window"}


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """The page's ledger and policy (with access:) live in fresh directories; the cached engine
    and policy are dropped around each test."""
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    monkeypatch.delenv(ENV_DB, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield data, policy(policy_dir, actions=ACTIONS, settings=SETTINGS)
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def engine(dirs):
    engine = open_ledger(sqlite_url(dirs[0]))
    yield engine
    engine.dispose()


@pytest.fixture
def waiting(engine, dirs) -> tuple[int, int]:
    """An open incident and the disruptive action proposed on it: (incident id, request id)."""
    incident = open_incident(engine, at=utcnow())
    request = flow.propose(engine, dirs[1], incident, "restart-web", {}, proposer="bob", reason="web is down",
                           now=utcnow())
    return incident, request.id


def run(node) -> AppTest:
    """Run the app (or the app a changed widget belongs to) and check that it raised nothing."""
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def app(role: str | None, **state) -> AppTest:
    """The app in a session logged in with ``role`` (None: nobody logged in), its session state
    given ``state`` besides."""
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    if role is not None:
        at.session_state[SESSION] = Identity(NAMES[role], role, "web app", utcnow())
    for key, value in state.items():
        at.session_state[key] = value
    return at


def incident_page(role: str | None, incident: int, **state) -> AppTest:
    at = app(role, **state)
    at.query_params["incident"] = str(incident)
    return run(at)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def buttons(at: AppTest) -> set[str]:
    return {b.key or b.label for b in at.button}


def test_without_a_login_only_the_login_form_shows(engine, waiting):
    incident, request = waiting
    for at in (incident_page(None, incident), run(run(app(None)).switch_page("../pages/approvals.py"))):
        assert texts(at.title) == "Log in"
        assert [field.label for field in at.text_input] == ["Name", "Password"]
        assert buttons(at) == {"FormSubmitter:login-Log in"}
        assert not (at.subheader or at.dataframe or at.markdown or at.caption or at.sidebar.children)
        assert SESSION not in at.session_state


def test_an_expired_login_shows_the_login_form_again(engine):
    at = run(app(None, **{SESSION: Identity("olga", "operator", "web app", utcnow() - timedelta(hours=13))}))
    assert texts(at.title) == "Log in"
    assert texts(at.info) == "Your login expired: log in again."
    assert [(entry.name, entry.outcome) for entry in queries.logins(engine)] == [("olga", "out")]


def incident_actions(incident: int) -> set[str]:
    """The keys of the incident page's action buttons (Acknowledge, the lifecycle's, Silence this,
    the feedback form's, asking the model)."""
    lifecycle = (f"{action}-{incident}" for action in ("triage", "contain", "escalate", "suppress", "resolve"))
    return {f"ack-{incident}", *lifecycle, f"silence-{incident}", f"FormSubmitter:feedback-{incident}-Record",
            f"refine-{incident}"}


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_viewer_is_offered_no_action_where_an_operator_is(engine, waiting, role):
    incident, request = waiting
    at = incident_page(role, incident)
    assert f"Incident #{incident}" in texts(at.subheader)
    assert f"**{NAMES[role]}** · {role}" in texts(at.sidebar.caption)
    offered = incident_actions(incident)
    assert (buttons(at) & offered) == (offered if role == "operator" else set())
    if role == "viewer":  # besides logging out, only what reads: the review notebook run for a report
        assert buttons(at) == {"logout", f"run-review-{incident}"}
    assert ("Was this worth an alert?" in texts(at.markdown)) == (role == "operator")
    assert "**Waiting for an approver's decision**" in texts(at.markdown)  # neither decides a request
    assert "An approver decides this request." in texts(at.caption)
    assert not buttons(at) & {f"FormSubmitter:decide-{request}-Approve", f"FormSubmitter:decide-{request}-Reject"}

    at = run(at.switch_page("../pages/silences.py"))
    assert (buttons(at) & SILENCE_FORMS) == (SILENCE_FORMS if role == "operator" else set())
    assert ([tab.label for tab in at.tabs] == ["New silence", "New maintenance window"]) == (role == "operator")

    at = run(at.switch_page("../pages/approvals.py"))
    assert texts(at.subheader).startswith("Waiting for an approver (1)")
    assert f"**#{request} restart-web**" in texts(at.markdown)
    assert "An approver decides this request." in texts(at.caption)
    assert not at.text_input and buttons(at) <= {"logout"}


@pytest.mark.parametrize("dialog", ["resolve", "suppress", "silence"])
def test_an_action_forged_through_a_viewers_session_is_refused_and_changes_nothing(engine, waiting, dialog):
    incident, _ = waiting
    before = queries.incident_detail(engine, incident)
    at = incident_page("viewer", incident, **{OPEN: (dialog, incident)})  # as if its button had been clicked
    if dialog == "silence":
        at.text_input(key=f"silence-this-comment-{incident}").input("quiet please")
        at = run(at.button(key=f"FormSubmitter:silence-this-form-{incident}-Create silence").click())
        refusal = "Create silence: vera is a viewer and may not add silences: that takes the operator role"
    else:
        at.text_area(key=f"{dialog}-reason-{incident}").input("not mine to say")
        at = run(at.button(key=f"FormSubmitter:{dialog}-form-{incident}-{dialog.title()}").click())
        refusal = (f"{dialog.title()} incident {incident}: vera is a viewer and may not {dialog} incidents: "
                   "that takes the operator role")
    assert texts(at.error) == refusal
    assert not at.success
    after = queries.incident_detail(engine, incident)
    assert (after.state, after.timeline) == (before.state, before.timeline)
    assert queries.list_silences(engine, utcnow(), include_expired=True) == []



def test_logging_out_leaves_nothing_of_the_login_to_the_next(engine, waiting):
    """A dialog left open, an approval waiting for its step-up, the last confirmation: none of them
    is waiting for whoever logs in next at this browser."""
    incident, request = waiting
    at = incident_page("approver", incident, **{OPEN: ("resolve", incident), STEP_UP: (request, "april's reason"),
                                                CONFIRMATION: "Incident #1 is now triaged"})
    assert "Confirm it is you, april" in texts(at.markdown)
    at = run(at.button(key="logout").click())
    assert texts(at.title) == "Log in" and texts(at.info) == "You logged out."
    assert [key for key in (SESSION, OPEN, STEP_UP, CONFIRMATION) if key in at.session_state] == []


def test_an_approval_waiting_for_its_step_up_can_be_called_off_and_the_request_rejected(engine, waiting):
    incident, request = waiting
    at = incident_page("approver", incident, **{STEP_UP: (request, "april's reason")})
    assert f"FormSubmitter:decide-{request}-Reject" not in buttons(at)  # confirming would approve it
    at = run(at.button(key=f"cancel-{request}").click())
    assert STEP_UP not in at.session_state
    at.text_input(key=f"reason-{request}").input("not now")
    run(at.button(key=f"FormSubmitter:decide-{request}-Reject").click())
    rejected = queries.action_request(engine, request)
    assert (rejected.status, rejected.decided_by, rejected.decision_reason) == ("rejected", "april", "not now")
