"""Login in a real browser against the real worker, web app and demo service, with access: in the
policy and accounts made by `workbench users add`: a password, a password and then the TOTP code,
the lock after failed logins, logout; a viewer who reads and sees no action while an operator sees
them; and an approver whose login is older than the policy allows for a disruptive action, who
confirms the password and whose approval then goes through, in their name."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect

from app.demo import set_fault
from ledger import queries
from ledger.db import as_utc, open_ledger, sqlite_url, utcnow

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000
PASSWORD = "correct horse battery staple"
STEP_UP_AFTER = timedelta(seconds=3)
SETTINGS = f"""
access:
  max_failed_logins: 3
  step_up_after: {STEP_UP_AFTER.total_seconds():g}s
"""
ACTIONS = """
actions:
  - id: demo-fault-off
    description: Switch the demo service's injected fault off
    runner: {{kind: webhook, method: POST, url: "http://127.0.0.1:{port}/fault?mode=none"}}
    risk: disruptive
    postures: [demo]
    timeout: 5s
    enabled: true
recommend:
  - {{category: availability, service: demo, actions: [demo-fault-off]}}
"""
INCIDENT_ACTIONS = ["Acknowledge", "Triage", "Contain", "Escalate", "Suppress…", "Resolve…",
                    "Silence this…"]


@pytest.fixture
def settings_yaml() -> str:
    return SETTINGS


@pytest.fixture
def ledger(workbench):
    engine = open_ledger(sqlite_url(workbench.data_dir))
    yield engine
    engine.dispose()


def add_account(workbench, name: str, role: str, totp: bool = False) -> str | None:
    """`workbench users add NAME --role ROLE [--totp]`; the TOTP key it says to enter by hand, if any."""
    printed = workbench.cli("users", "add", name, "--role", role, *(["--totp"] if totp else []), "--password-stdin",
                            stdin=f"{PASSWORD}\n")
    key = re.search(r"enter the key ([A-Z2-7]+) by hand", printed)
    return key and key.group(1)


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def signed_in(page: Page, name: str, role: str):
    return page.get_by_test_id("stSidebar").get_by_text(f"{name} · {role}")


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You logged out.")).to_be_visible(timeout=UI_TIMEOUT_MS)


def button(page: Page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def heading(page: Page, text: str):
    return page.get_by_role("heading", name=text, exact=True).first


def go_to(page: Page, title: str) -> None:
    """Another page of the app, through the sidebar: the same session, still logged in."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(heading(page, title)).to_be_visible(timeout=UI_TIMEOUT_MS)


def test_log_in_with_a_password_and_log_out(workbench, page, screenshots):
    add_account(workbench, "olga", "operator")
    page.goto(workbench.ui_url)
    expect(page.get_by_label("Name")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(heading(page, "Log in")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # nothing of the app before the login
    page.screenshot(path=screenshots / "login.png", full_page=True)

    log_in(page, "olga", "not the password")
    expect(page.get_by_text("wrong name or password", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(heading(page, "Incidents")).to_have_count(0)
    page.screenshot(path=screenshots / "login-refused.png", full_page=True)

    log_in(page, "olga")
    expect(heading(page, "Incidents")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(signed_in(page, "olga", "operator")).to_be_visible()

    log_out(page)
    expect(heading(page, "Log in")).to_be_visible()
    expect(heading(page, "Incidents")).to_have_count(0)
    expect(page.get_by_label("Name")).to_be_visible()


def test_log_in_with_the_password_and_then_the_totp_code(workbench, page, screenshots, ledger):
    key = add_account(workbench, "tara", "operator", totp=True)
    assert key, "users add --totp printed no key"
    page.goto(workbench.ui_url)
    log_in(page, "tara")
    expect(page.get_by_text("enter the 6-digit code from your authenticator app")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)
    page.screenshot(path=screenshots / "login-code.png", full_page=True)

    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Log in").click()
    expect(heading(page, "Incidents")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(signed_in(page, "tara", "operator")).to_be_visible()
    assert [(entry.method, entry.outcome) for entry in queries.logins(ledger)][0] == ("totp", "in")


def account(ledger, name: str) -> queries.AccountItem:
    return next(a for a in queries.accounts(ledger) if a.name == name)


def test_failed_logins_lock_the_account(workbench, page, screenshots, ledger):
    add_account(workbench, "lena", "operator")
    page.goto(workbench.ui_url)
    for failed in (1, 2):
        log_in(page, "lena", "not the password")
        workbench.wait_for(f"failed login {failed}", lambda: account(ledger, "lena").failed_logins == failed)
        expect(page.get_by_text("wrong name or password", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    log_in(page, "lena", "not the password")
    expect(page.get_by_text(re.compile(r"^wrong name or password: 3 failed logins in a row lock this account "
                                       r"until \d\d:\d\d UTC$"))).to_be_visible(timeout=UI_TIMEOUT_MS)

    log_in(page, "lena")  # the right password, too late
    expect(page.get_by_text(re.compile(r"^this account is locked after 3 failed logins, until \d\d:\d\d UTC "
                                       r"\(or until workbench users unlock lena\)$"))).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(heading(page, "Incidents")).to_have_count(0)
    page.screenshot(path=screenshots / "login-locked.png", full_page=True)


def test_a_viewer_sees_no_action_and_an_operator_does(workbench, page, screenshots, ledger, tmp_path):
    (tmp_path / "policy" / "actions.yaml").write_text(ACTIONS.format(port=workbench.demo_port))
    add_account(workbench, "vera", "viewer")
    add_account(workbench, "otto", "operator")
    set_fault(workbench.demo_port, "errors")
    request = workbench.wait_for("the worker to propose turning the fault off",
                                 lambda: queries.list_action_requests(ledger, statuses=["pending"]))[0]

    page.goto(f"{workbench.ui_url}?incident={request.incident_id}")
    log_in(page, "vera")
    expect(heading(page, f"Incident #{request.incident_id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(signed_in(page, "vera", "viewer")).to_be_visible()
    expect(page.get_by_text("Waiting for an approver's decision")).to_be_visible()
    expect(page.get_by_text("An approver decides this request.")).to_be_visible()
    expect(page.get_by_role("tab", name="Findings")).to_be_visible()  # the page is drawn down to its tabs
    for name in [*INCIDENT_ACTIONS, "Approve", "Reject", "Record"]:
        expect(button(page, name)).to_have_count(0)
    plan = f"POST http://127.0.0.1:{workbench.demo_port}/fault?mode=none"
    expect(page.get_by_text(plan)).to_be_visible(timeout=UI_TIMEOUT_MS)  # a code block is drawn a moment later
    page.screenshot(path=screenshots / "viewer-incident.png", full_page=True)
    page.get_by_role("tab", name="Findings").click()
    expect(page.get_by_text("Was this worth an alert?")).to_have_count(0)

    go_to(page, "Silences")
    expect(page.get_by_text("No silences.")).to_be_visible(timeout=UI_TIMEOUT_MS)
    for name in ["Create silence", "Create maintenance window"]:
        expect(button(page, name)).to_have_count(0)
    expect(page.get_by_role("tab", name="New silence")).to_have_count(0)
    go_to(page, "Approvals")
    expect(page.get_by_text(f"#{request.id} demo-fault-off")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("An approver decides this request.")).to_be_visible()
    expect(button(page, "Approve")).to_have_count(0)

    log_out(page)
    log_in(page, "otto")
    expect(signed_in(page, "otto", "operator")).to_be_visible(timeout=UI_TIMEOUT_MS)
    go_to(page, "Incidents")
    expect(heading(page, f"Incident #{request.incident_id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
    for name in INCIDENT_ACTIONS:
        expect(button(page, name)).to_be_visible()
    page.get_by_role("tab", name="Findings").click()
    expect(page.get_by_text("Was this worth an alert?")).to_be_visible()
    go_to(page, "Silences")
    expect(button(page, "Create silence")).to_be_visible(timeout=UI_TIMEOUT_MS)
    go_to(page, "Approvals")
    expect(page.get_by_text("An approver decides this request.")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(button(page, "Approve")).to_have_count(0)


def test_an_older_login_confirms_the_password_before_approving_a_disruptive_action(workbench, page, screenshots,
                                                                                   ledger, tmp_path):
    (tmp_path / "policy" / "actions.yaml").write_text(ACTIONS.format(port=workbench.demo_port))
    add_account(workbench, "april", "approver")
    page.goto(f"{workbench.ui_url}approvals")
    log_in(page, "april")  # and then the page the address names, not the default one
    expect(heading(page, "Approvals")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("No action request is waiting for a decision.")).to_be_visible()

    set_fault(workbench.demo_port, "errors")
    request = workbench.wait_for("the worker to propose turning the fault off",
                                 lambda: queries.list_action_requests(ledger, statuses=["pending"]))[0]
    expect(page.get_by_text(f"#{request.id} demo-fault-off")).to_be_visible(timeout=UI_TIMEOUT_MS)
    workbench.wait_for("april's login to be older than step_up_after",
                       lambda: utcnow() - as_utc(account(ledger, "april").last_login_at) > STEP_UP_AFTER)

    page.get_by_label("Reason").fill("the demo is failing, turn the fault off")
    button(page, "Approve").click()
    expect(page.get_by_text("Confirm it is you, april")).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert queries.action_request(ledger, request.id).status == "pending"
    page.screenshot(path=screenshots / "approval-step-up.png", full_page=True)

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    button(page, "Confirm").click()
    expect(page.get_by_text(f"Action request #{request.id} approved: the worker runs it")).to_be_visible(
        timeout=UI_TIMEOUT_MS)
    decided = queries.action_request(ledger, request.id)
    assert decided.status != "pending"  # approved, or already run by the worker
    assert (decided.decided_by, decided.decision_reason) == ("april", "the demo is failing, turn the fault off")
