"""Guarded remediation in a real browser: the demo service starts failing, the real worker
opens an incident and proposes turning the fault off; the operator sees the request on the
Approvals page (evidence, exact action, gate checks) and approves it; the worker runs it and
verifies it, and the incident is contained."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from app.access import os_user as operator_name
from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000
ACTIONS = """
actions:
  - id: demo-fault-off
    description: Switch the demo service's injected fault off
    runner: {{kind: webhook, method: POST, url: "http://127.0.0.1:{port}/fault?mode=none"}}
    risk: containment
    postures: [demo]
    timeout: 5s
    enabled: true
recommend:
  - {{category: availability, service: demo, actions: [demo-fault-off]}}
"""


def test_the_operator_approves_a_proposed_action_that_contains_the_incident(workbench, page, tmp_path, screenshots):
    (tmp_path / "policy" / "actions.yaml").write_text(ACTIONS.format(port=workbench.demo_port))
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    try:
        page.goto(f"{workbench.ui_url}approvals")
        expect(page.get_by_text("No action request is waiting for a decision.")).to_be_visible(timeout=UI_TIMEOUT_MS)

        set_fault(workbench.demo_port, "errors")
        request = workbench.wait_for("the worker to propose turning the fault off",
                                     lambda: queries.list_action_requests(ledger, statuses=["pending"]))[0]
        plan = f"POST http://127.0.0.1:{workbench.demo_port}/fault?mode=none"
        assert request.plan == plan

        # the open page refreshes itself: the request appears without a reload
        expect(page.get_by_text(f"#{request.id} demo-fault-off")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text(plan)).to_be_visible()
        expect(page.get_by_text("posture demo; the action is allowed in demo")).to_be_visible()
        expect(page.get_by_text("[STATUS] == 200 -> got 503", exact=True).first).to_be_visible()
        page.screenshot(path=screenshots / "approvals-pending.png", full_page=True)

        page.get_by_label("Reason").fill("the demo is failing, turn the fault off")
        page.get_by_role("button", name="Approve").click()
        done = workbench.wait_for("the worker to run and verify the action",
                                  lambda: (r := queries.action_request(ledger, request.id)).verification and r)
        assert (done.status, done.verification, done.decided_by) == ("succeeded", "passed", operator_name())
        assert httpx.get(f"http://127.0.0.1:{workbench.demo_port}/fault", timeout=2).json()["mode"] == "none"
        timeline = queries.incident_detail(ledger, request.incident_id).timeline
        assert [t.message for t in timeline if t.to_state == "contained"] == [
            f"action request #{request.id} demo-fault-off: verified: demo-web passed again"]

        expect(page.get_by_text("No action request is waiting for a decision.")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("History")).to_be_visible()
        page.screenshot(path=screenshots / "approvals-history.png", full_page=True)
    finally:
        ledger.dispose()
