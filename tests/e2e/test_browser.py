"""The whole loop in a real browser: the demo service starts failing, the worker opens an
incident, the open Incidents page shows it without a reload, and the operator triages it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.access import os_user as operator_name
from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url

pytestmark = pytest.mark.e2e
TITLE = "demo-web failing: [STATUS] == 200 -> got 503"
UI_TIMEOUT_MS = 30_000


def test_operator_triages_the_incident_the_worker_opened(workbench, page, screenshots):
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    try:
        page.goto(workbench.ui_url)
        expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=UI_TIMEOUT_MS)

        set_fault(workbench.demo_port, "errors")
        incident = workbench.wait_for("the worker to open an incident", lambda: queries.list_incidents(ledger))[0]
        assert (incident.title, incident.state) == (TITLE, "observed")

        # the open page refreshes itself: the incident appears without a reload, and stays
        expect(page.get_by_role("heading", name=f"Incident #{incident.id}")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page).to_have_url(f"{workbench.ui_url}?incident={incident.id}")
        page.get_by_role("tab", name="Evidence").click()
        expect(page.get_by_text("[STATUS] == 200 -> got 503", exact=True).first).to_be_visible()

        page.get_by_role("button", name="Triage", exact=True).click()
        expect(page.get_by_text(f"Incident #{incident.id} is now triaged")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=screenshots / "incidents-triaged.png", full_page=True)

        detail = queries.incident_detail(ledger, incident.id)
        assert detail.state == "triaged"
        assert (detail.timeline[-1].actor, detail.timeline[-1].to_state) == (operator_name(), "triaged")
    finally:
        ledger.dispose()
