"""The incident screen in a real browser against the real worker and demo service: the overview
healthy and then failing, the tab title counting what waits, deep links to unknown, open and
resolved incidents, Silence this with its preview, resolve ending on the same incident with a
confirmation, approving from the incident page; and no request leaving the machine from any page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.e2e.test_remediation_browser import ACTIONS

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000
PAGES = {"overview": "Overview", "trends": "Trends", "silences": "Silences", "routing": "Routing",
         "approvals": "Approvals", "rules": "Rule suggestions", "notifications": "Notifications"}
LOCAL = {"127.0.0.1", "localhost"}


def outbound(page: Page) -> list[str]:
    """Every request the page makes to anywhere but this machine, from now on."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url)
            if urlsplit(request.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(request.url).hostname not in LOCAL else None)
    return seen


def heading(page: Page, text: str):
    return page.get_by_role("heading", name=text, exact=True).first


def test_the_incident_screen_from_healthy_to_failing_to_resolved(workbench, page, screenshots):
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    leaving = outbound(page)
    try:
        page.goto(f"{workbench.ui_url}overview")
        expect(page.get_by_text(re.compile(r"ok\s*demo · 1 watched"))).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page).to_have_title("SRE Workbench")
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        page.screenshot(path=screenshots / "overview-healthy.png", full_page=True)
        for path, title in PAGES.items():  # every page, for the outbound check
            page.goto(f"{workbench.ui_url}{path}")
            expect(heading(page, title)).to_be_visible(timeout=UI_TIMEOUT_MS)

        page.goto(workbench.ui_url)
        expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text(re.compile("demo · 1 watched"))).to_be_visible()  # nothing open: the overview
        set_fault(workbench.demo_port, "errors")
        incident = workbench.wait_for("the worker to open an incident", lambda: queries.list_incidents(ledger))[0]
        expect(heading(page, f"Incident #{incident.id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page).to_have_title("(1) SRE Workbench", timeout=UI_TIMEOUT_MS)

        page.goto(f"{workbench.ui_url}overview")
        expect(page.get_by_text(re.compile(r"down\s*demo · 1 watched"))).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_role("link", name=f"#{incident.id}")).to_be_visible()
        page.screenshot(path=screenshots / "overview-failing.png", full_page=True)

        page.goto(f"{workbench.ui_url}?incident=999")
        expect(page.get_by_text("Incident #999 does not exist.")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page).to_have_url(f"{workbench.ui_url}?incident=999")

        table = page.get_by_test_id("stDataFrame").first  # a click on the list's first row opens it
        box = table.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + 52)  # the row's selection cell, under the header
        expect(heading(page, f"Incident #{incident.id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page).to_have_url(f"{workbench.ui_url}?incident={incident.id}")
        page.get_by_role("button", name="Silence this…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("textbox", name="Matchers")).to_have_value('service="demo"\ntarget="demo-web"',
                                                                               timeout=UI_TIMEOUT_MS)
        expect(dialog.get_by_text("1 firing finding(s), 1 target(s) of the policy")).to_be_visible()
        dialog.get_by_role("textbox", name="Comment").fill("deploying the fix")
        page.screenshot(path=screenshots / "incident-silence-this.png", full_page=True)
        dialog.get_by_role("button", name="Create silence").click()
        expect(page.get_by_text('Silence #1 created for 2h: {service="demo", target="demo-web"}')).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        expect(page.get_by_role("dialog")).to_have_count(0)

        page.get_by_role("button", name="Suppress…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("textbox", name="Reason").fill("known: the fix is deploying")
        dialog.get_by_role("button", name="Suppress").click()
        expect(page.get_by_text(f"Incident #{incident.id} is now suppressed: known: the fix is deploying")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(heading(page, f"Incident #{incident.id}")).to_be_visible()

        page.get_by_role("button", name="Resolve…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Resolve").click()
        expect(dialog.get_by_text("going to resolved needs a reason")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.wait_for_timeout(6_000)  # past the page's refresh: the dialog and its error are still there
        expect(dialog.get_by_text("going to resolved needs a reason")).to_be_visible()
        dialog.get_by_role("textbox", name="Note").fill("fault switched off by hand")
        dialog.get_by_role("button", name="Resolve").click()
        expect(page.get_by_text(f"Incident #{incident.id} is now resolved: fault switched off by hand")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        expect(heading(page, f"Incident #{incident.id}")).to_be_visible()
        expect(page).to_have_url(f"{workbench.ui_url}?incident={incident.id}")
        page.screenshot(path=screenshots / "incident-resolved.png", full_page=True)

        page.goto(f"{workbench.ui_url}?incident={incident.id}")  # resolved: outside the default filter
        expect(heading(page, f"Incident #{incident.id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("resolved", exact=True).first).to_be_visible()
        assert queries.incident_detail(ledger, incident.id).state == "resolved"
        assert leaving == [], f"requests left the machine: {leaving}"
    finally:
        ledger.dispose()


def test_the_operator_approves_on_the_incident_page(workbench, page, tmp_path, screenshots):
    (tmp_path / "policy" / "actions.yaml").write_text(ACTIONS.format(port=workbench.demo_port))
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    leaving = outbound(page)
    try:
        set_fault(workbench.demo_port, "errors")
        request = workbench.wait_for("the worker to propose turning the fault off",
                                     lambda: queries.list_action_requests(ledger, statuses=["pending"]))[0]
        page.goto(f"{workbench.ui_url}?incident={request.incident_id}")
        expect(page.get_by_text("Waiting for your decision")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text(f"#{request.id} demo-fault-off")).to_be_visible()
        expect(page.get_by_text(request.plan)).to_be_visible()
        expect(page).to_have_title(re.compile(r"^\(2\) SRE Workbench"), timeout=UI_TIMEOUT_MS)  # 1 open, 1 to approve
        page.screenshot(path=screenshots / "incident-pending-request.png", full_page=True)

        page.get_by_label("Reason").fill("turn the fault off")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_text(f"Action request #{request.id} approved: the worker runs it")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        done = workbench.wait_for("the worker to run and verify the action",
                                  lambda: (r := queries.action_request(ledger, request.id)).verification and r)
        assert (done.status, done.verification) == ("succeeded", "passed")
        expect(page.get_by_text("Waiting for your decision")).to_have_count(0, timeout=UI_TIMEOUT_MS)
        assert leaving == [], f"requests left the machine: {leaving}"
    finally:
        ledger.dispose()
