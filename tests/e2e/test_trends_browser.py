"""The Trends page in a real browser: the demo service's golden signals from the rollups the
worker keeps, and the incident the worker opened drawn as a band on the same time axis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url, utcnow
from ledger.samples import Sample, SampleStore

pytestmark = pytest.mark.e2e
UI_TIMEOUT_MS = 30_000
LABELS = {"service": "demo", "target": "demo-web", "kind": "http"}


@pytest.fixture
def history():
    """Twenty minutes of the demo's probe samples before the workbench starts, so that the
    worker's first rollup pass has finished minutes to chart."""
    def seed(data_dir):
        store, now = SampleStore(data_dir / "samples"), utcnow()
        for i in range(120):
            at = now - timedelta(minutes=20) + i * timedelta(seconds=10)
            store.append([Sample("probe_success", LABELS, 1.0, at),
                          Sample("probe_duration_seconds", LABELS, 0.02 + (i % 7) / 1000, at)])
        store.flush()
    return seed


def test_trends_show_the_golden_signals_with_the_incident_band(workbench, page, tmp_path, screenshots):
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    try:
        set_fault(workbench.demo_port, "errors")
        incident = workbench.wait_for("the worker to open an incident", lambda: queries.list_incidents(ledger))[0]

        page.goto(workbench.ui_url + "trends")
        expect(page.get_by_role("heading", name="Trends")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.get_by_text("1h", exact=True).click()
        charts = page.locator(".js-plotly-plot")
        expect(charts.first).to_be_visible(timeout=UI_TIMEOUT_MS)
        label = f"incident #{incident.id} ({incident.severity})"
        expect(page.locator("g.annotation").filter(has_text=label).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("Latency").first).to_be_visible()
        page.screenshot(path=screenshots / "trends.png", full_page=True)
    finally:
        ledger.dispose()
