"""The Silences page under Streamlit's AppTest, through the real st.navigation entrypoint, on a
real ledger and a fixed clock: create a silence or a maintenance window with the forms, see it
listed with its status (ending soon flagged), expire it with its button; the findings kept out
of incidents are listed with why and since when, and marked on the incidents they belong to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.access import os_user as operator_name
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB
from ledger import queries
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.repo import incidents, silences

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a Sunday, 13:00 in Berlin


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The page's ledger lives in a fresh data directory, its clock stands at NOW; the cached
    engine is dropped around each test."""
    directory = tmp_path / "data"
    monkeypatch.setenv(ENV_DATA, str(directory))
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    st.cache_resource.clear()
    yield directory
    st.cache_resource.clear()


@pytest.fixture
def engine(data_dir):
    engine = open_ledger(sqlite_url(data_dir))
    yield engine
    engine.dispose()


def run(node) -> AppTest:
    """Run the app (or the app a changed widget belongs to) and check that it raised nothing."""
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def silences_page() -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=30))
    return run(at.switch_page("../pages/silences.py"))


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def add_silence(engine, **window) -> int:
    with write_session(engine) as session:
        return silences.add_silence(session, matchers=[{"label": "service", "op": "=", "value": "shop"}],
                                author="alice", comment="deploy", now=NOW, **window).id


def open_finding(engine, target: str, service: str, parent: str | None = None) -> int:
    spec = incidents.FindingSpec(rule="http", target=target, service=service, severity="critical",
                            summary=f"{target} failing: 503", correlation_key=f"{service}/{target}", parent=parent)
    with write_session(engine) as session:
        return incidents.open_finding(session, spec, [], NOW).id


def test_create_a_silence_with_the_form_then_expire_it(engine):
    at = silences_page()
    assert "No silences." in texts(at.info)
    at.text_area(key="silence-matchers").input("service=shop\n\ntarget=~web-.*\n")
    at.text_input(key="silence-duration").input("90m")
    at.text_input(key="silence-comment").input("deploy of shop")
    run(at.button(key="FormSubmitter:silence-form-Create silence").click())

    [created] = queries.list_silences(engine, NOW)
    assert (created.kind, created.status, created.author, created.comment) == (
        "silence", "active", operator_name(), "deploy of shop")
    assert (created.matchers, created.ends_at) == ([{"label": "service", "op": "=", "value": "shop"},
                                                    {"label": "target", "op": "=~", "value": "web-.*"}],
                                                   NOW + timedelta(minutes=90))
    shown = texts(at.markdown)
    assert (':green-badge[active] **silence #1** · `{service="shop", target=~"web-.*"}` · '
            "until 2026-03-01 13:30:00 UTC (in 1h 30m)") in shown

    run(at.button(key="expire-1").click())
    [expired] = queries.list_silences(engine, NOW, include_expired=True)
    assert (expired.status, expired.expired_at, expired.expired_by) == ("expired", NOW, operator_name())
    assert "No silences." in texts(at.info)


def test_a_bad_matcher_is_one_readable_line_and_records_nothing(engine):
    at = silences_page()
    at.text_area(key="silence-matchers").input("service shop")
    at.text_input(key="silence-comment").input("deploy")
    run(at.button(key="FormSubmitter:silence-form-Create silence").click())
    assert texts(at.error).startswith("Create silence: cannot parse matcher 'service shop'")
    assert queries.list_silences(engine, NOW, include_expired=True) == []


def test_create_a_recurring_maintenance_window(engine):
    at = silences_page()
    run(at.radio(key="maintenance-recurs").set_value("recurring"))
    at.text_area(key="maintenance-matchers").input("service=backup")
    at.selectbox(key="maintenance-every").select("weekly")
    at.text_input(key="maintenance-at").input("02:00")
    at.selectbox(key="maintenance-timezone").select("Europe/Berlin")
    at.multiselect(key="maintenance-days").set_value(["sat", "sun"])
    at.text_input(key="maintenance-comment").input("weekend backups")
    run(at.button(key="FormSubmitter:maintenance-form-Create maintenance window").click())

    [window] = queries.list_silences(engine, NOW)
    assert (window.kind, window.status, window.ends_at) == ("maintenance", "pending", None)
    assert window.recurrence == {"every": "weekly", "at": "02:00", "days": ["sat", "sun"],
                                 "duration_seconds": 7200.0, "timezone": "Europe/Berlin"}
    assert ":blue-badge[pending] **maintenance #1** · `{service=\"backup\"}` · weekly on sat, sun at 02:00 " \
           "Europe/Berlin for 2h, no end" in texts(at.markdown)


def test_a_one_off_maintenance_window_starts_when_given(engine):
    at = silences_page()
    at.text_area(key="maintenance-matchers").input("service=db")
    at.text_input(key="maintenance-starts").input("2026-03-01T22:00Z")
    at.text_input(key="maintenance-duration").input("4h")
    at.text_input(key="maintenance-comment").input("db upgrade")
    run(at.button(key="FormSubmitter:maintenance-form-Create maintenance window").click())

    [window] = queries.list_silences(engine, NOW)
    assert (window.status, window.starts_at, window.ends_at, window.recurrence) == (
        "pending", NOW + timedelta(hours=10), NOW + timedelta(hours=14), None)
    assert ("from 2026-03-01 22:00:00 UTC (in 10h), until 2026-03-02 02:00:00 UTC (in 14h)"
            in texts(at.markdown))


def test_a_silence_ending_soon_is_flagged(engine):
    ending = add_silence(engine, starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(minutes=10))
    lasting = add_silence(engine, starts_at=NOW, ends_at=NOW + timedelta(hours=2))
    at = silences_page()
    assert texts(at.warning) == f"Ending within 15m: silence #{ending}"
    shown = texts(at.markdown)
    assert f":orange-badge[:material/timer: expiring] **silence #{ending}**" in shown
    assert "until 2026-03-01 12:10:00 UTC (in 10m)" in shown
    assert f":green-badge[active] **silence #{lasting}**" in shown


def test_suppressed_findings_show_why_since_when_and_their_incident(engine):
    silence = add_silence(engine, starts_at=NOW, ends_at=NOW + timedelta(hours=2))
    open_finding(engine, "web-1", "shop")
    open_finding(engine, "db-host", "db")
    open_finding(engine, "db-replica", "db", parent="db-host")
    [parent] = queries.list_incidents(engine)

    rows = silences_page().dataframe[0].value
    assert list(rows["suppressed by"]) == [f"parent incident #{parent.id} (db-host)", f"silence #{silence}"]
    assert list(rows["target"]) == ["db-replica", "web-1"]
    assert list(rows["since (UTC)"]) == [NOW, NOW]
    assert list(rows["incident"].fillna("")) == [f"./?incident={parent.id}", ""]


def test_an_incident_marks_the_findings_it_suppresses(engine):
    open_finding(engine, "db-host", "db")
    open_finding(engine, "db-replica", "db", parent="db-host")
    [parent] = queries.list_incidents(engine)

    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    at.query_params["incident"] = str(parent.id)
    findings = run(at).tabs[2]
    assert list(findings.dataframe[0].value["suppressed by"]) == ["", f"parent incident #{parent.id} (db-host)"]
    assert list(findings.dataframe[0].value["target"]) == ["db-host", "db-replica"]
    assert ":gray-badge[:material/notifications_off: suppressed] 1 finding(s) of dependent targets" in texts(
        findings.markdown)
