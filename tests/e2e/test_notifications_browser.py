"""Reaching the operator, in a real browser: the demo service fails, the real worker notifies a
working webhook receiver and cannot reach a second channel; the sidebar's badge and the tab title
count what waits, the Notifications page shows what went where and why the other failed, and the
operator acknowledges the incident on its page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.access import os_user as operator_name
from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.support import free_port

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000


def test_the_operator_sees_what_was_sent_what_failed_and_acknowledges(workbench, page, tmp_path, receiver, screenshots):
    (tmp_path / "policy" / "channels.yaml").write_text(f"""
channels:
  - {{name: oncall-hook, kind: webhook, url: "{receiver.url}/hook"}}
  - {{name: pager, kind: webhook, url: "http://127.0.0.1:{free_port()}/down"}}
routes:
  - {{channels: [oncall-hook], group_wait: 1s, continue: true}}
  - {{channels: [pager], group_wait: 1s}}
attempts: 1
interval: 1s
""")
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    try:
        page.goto(f"{workbench.ui_url}notifications")
        expect(page.get_by_text("no open incidents")).to_be_visible(timeout=UI_TIMEOUT_MS)
        set_fault(workbench.demo_port, "errors")
        workbench.wait_for("a notification at the receiver", lambda: receiver.bodies())
        incident = queries.list_incidents(ledger)[0]
        # the open page refreshes itself: the badge and the inbox fill without a reload
        expect(page.get_by_text("1 undelivered")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("1 not acknowledged")).to_be_visible()
        expect(page.get_by_text("reached no channel")).to_be_visible()
        expect(page.get_by_text(re.compile("Cannot connect to host 127.0.0.1")).first).to_be_visible()
        expect(page).to_have_title(re.compile(r"^\(\d+\) SRE Workbench$"), timeout=UI_TIMEOUT_MS)
        page.screenshot(path=screenshots / "notifications.png", full_page=True)

        page.goto(f"{workbench.ui_url}?incident={incident.id}")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("button", name="Acknowledged")).to_be_disabled(timeout=UI_TIMEOUT_MS)
        assert queries.list_incidents(ledger)[0].acknowledged_by == operator_name()
        expect(page.get_by_text("1 not acknowledged")).to_be_hidden(timeout=UI_TIMEOUT_MS)
        page.get_by_role("tab", name="Notifications").click()
        expect(page.get_by_role("tab", name="Notifications")).to_have_attribute("aria-selected", "true")
        page.screenshot(path=screenshots / "incident-acknowledged.png", full_page=True)
    finally:
        ledger.dispose()
