"""The Incidents page under Streamlit's AppTest, through the real st.navigation entrypoint,
on a ledger seeded the way the worker fills it: probe -> record -> threshold -> incident."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.cli.serve import STREAMLIT_APP
from app.operator import operator_name
from app.settings import ENV_DATA, ENV_DB
from ledger import queries
from ledger.db import open_ledger, sqlite_url, utcnow
from policies.loader import load_policy
from probes.context import ProbeClient, ProbeContext, failed
from probes.cycle import probe, record

TARGETS = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    severity: critical
    failure_threshold: 2
    conditions: ["[STATUS] == 200"]
  - name: db-ping
    kind: http
    service: db
    url: http://127.0.0.1:9/
    severity: warning
    failure_threshold: 2
    conditions: ["[STATUS] == 200"]
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The page's ledger lives in a fresh data directory; the cached engine is dropped around each test."""
    directory = tmp_path / "data"
    monkeypatch.setenv(ENV_DATA, str(directory))
    monkeypatch.delenv(ENV_DB, raising=False)
    st.cache_resource.clear()
    yield directory
    st.cache_resource.clear()


@pytest.fixture
def ledger(data_dir):
    engine = open_ledger(sqlite_url(data_dir))
    yield engine
    engine.dispose()


@pytest.fixture
def incidents(ledger, policy_dir, demo_target) -> dict[str, int]:
    """Two open incidents: shop (critical, a real 503 from the demo service) and db (warning,
    connection refused). Returns the incident id by service."""
    demo_target.fault("errors")
    policy = load_policy(policy_dir(TARGETS.format(url=demo_target.url)))

    async def probe_shop():
        ctx = ProbeContext(ProbeClient(policy.settings.max_connections))
        async with ctx.client:
            return [await probe(policy.target("shop-web"), ctx) for _ in range(2)]

    for result in asyncio.run(probe_shop()):
        record(ledger, policy.target("shop-web"), result)
    db = policy.target("db-ping")
    for seconds in range(2):
        record(ledger, db, failed(db, utcnow() + timedelta(seconds=seconds), 1.0, "cannot connect: connection refused"))
    return {row.service: row.id for row in queries.list_incidents(ledger)}


def page(incident: int | None = None) -> AppTest:
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    if incident is not None:
        at.query_params["incident"] = str(incident)
    return run(at)


def run(node) -> AppTest:
    """Run the app (or the app a changed widget belongs to) and check that it raised nothing."""
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def listed_services(at: AppTest) -> list[str]:
    return sorted(at.dataframe[0].value["service"])


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def test_lists_incidents_and_filters_narrow_the_list(incidents):
    at = page()
    assert listed_services(at) == ["db", "shop"]
    assert "shop-web failing: [STATUS] == 200 -> got 503" in list(at.dataframe[0].value["title"])

    run(at.multiselect(key="filter_severity").select("critical"))
    assert listed_services(at) == ["shop"]

    run(at.multiselect(key="filter_severity").unselect("critical"))
    run(at.multiselect(key="filter_service").select("db"))
    assert listed_services(at) == ["db"]

    run(at.multiselect(key="filter_service").unselect("db"))
    run(at.multiselect(key="filter_state").set_value(["triaged"]))
    assert not at.dataframe
    assert "No incidents" in at.info[0].value


def test_detail_shows_timeline_and_evidence(incidents):
    at = page(incident=incidents["shop"])
    assert at.selectbox(key="incident_select").value == incidents["shop"]
    timeline = at.tabs[0].dataframe[0].value
    assert list(timeline["change"])[0] == "- → observed"
    assert "opened: shop-web failing" in list(timeline["message"])[0]
    evidence = texts(at.tabs[1].markdown)
    assert "`[STATUS] == 200 -> got 503`" in evidence
    assert "http probe of shop-web failed" in evidence

    run(at.selectbox(key="incident_select").select(incidents["db"]))
    assert at.query_params["incident"] == str(incidents["db"])
    assert "cannot connect: connection refused" in texts(at.tabs[1].markdown)


def test_triage_moves_the_incident_to_triaged(incidents, ledger):
    incident = incidents["shop"]
    at = page(incident=incident)
    run(at.button(key=f"triage-{incident}").click())

    detail = queries.incident_detail(ledger, incident)
    assert detail.state == "triaged"
    assert (detail.timeline[-1].actor, detail.timeline[-1].to_state) == (operator_name(), "triaged")
    assert ":orange-badge[triaged]" in texts(at.markdown)


def test_resolve_needs_a_note(incidents, ledger):
    incident = incidents["shop"]
    at = page(incident=incident)
    resolve = f"FormSubmitter:resolve-form-{incident}-Resolve"

    run(at.button(key=resolve).click())
    assert "needs a reason" in texts(at.error)
    assert queries.incident_detail(ledger, incident).state == "observed"

    at.text_area(key=f"resolve-reason-{incident}").input("demo service fixed")
    run(at.button(key=resolve).click())
    detail = queries.incident_detail(ledger, incident)
    assert detail.state == "resolved"
    assert detail.timeline[-1].message == "demo service fixed"
    assert not at.error
    assert listed_services(at) == ["db"]  # resolved incidents leave the default (open states) list


def test_no_incidents_shows_an_info(data_dir):
    at = page()
    assert not at.dataframe
    assert "No incidents" in at.info[0].value


def test_alert_evidence_shows_labels_and_annotations(ledger):
    from probes.ingest import ingest_alertmanager
    from tests.support import SAMPLES

    assert ingest_alertmanager(ledger, (SAMPLES / "alertmanager-webhook.json").read_bytes()).status == 200
    incident = queries.list_incidents(ledger)[0]
    at = page(incident.id)
    shown = texts(at.markdown) + "\n" + texts(at.caption)
    assert "`alert BlackboxProbeFailed firing (alertmanager-webhook)`" in shown
    assert 'instance="http://127.0.0.1:18081/", job="blackbox-http", severity="critical"' in shown
    assert "summary: HTTP probe of http://127.0.0.1:18081/ failed" in shown
