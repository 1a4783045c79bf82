"""The Incidents page under Streamlit's AppTest, through the real st.navigation entrypoint,
on a ledger seeded the way the worker fills it: probe -> record -> threshold -> incident."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.access import Identity
from app.access import os_user as operator_name
from app.cli.serve import STREAMLIT_APP
from app.operator import act
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
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
    st.cache_data.clear()
    yield directory
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def ledger(data_dir):
    engine = open_ledger(sqlite_url(data_dir))
    yield engine
    engine.dispose()


@pytest.fixture
def incidents(ledger, policy_dir, demo_target, monkeypatch) -> dict[str, int]:
    """Two open incidents: shop (critical, a real 503 from the demo service) and db (warning,
    connection refused), the page reading the same policy. Returns the incident id by service."""
    demo_target.fault("errors")
    directory = policy_dir(TARGETS.format(url=demo_target.url))
    monkeypatch.setenv(ENV_POLICY, str(directory))
    policy = load_policy(directory)

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


def shown_incident(at: AppTest) -> str | None:
    return next((s.value for s in at.subheader if s.value.startswith("Incident #")), None)


def test_lists_incidents_and_filters_narrow_the_list_but_never_the_incident_shown(incidents):
    at = page()
    assert listed_services(at) == ["db", "shop"]
    assert "shop-web failing: [STATUS] == 200 -> got 503" in list(at.dataframe[0].value["title"])
    pinned = at.query_params["incident"]
    assert shown_incident(at) == f"Incident #{pinned}"  # the newest open one, kept in the address

    run(at.multiselect(key="filter_severity").select("critical"))
    assert listed_services(at) == ["shop"]

    run(at.multiselect(key="filter_severity").unselect("critical"))
    run(at.multiselect(key="filter_service").select("db"))
    assert listed_services(at) == ["db"]

    run(at.multiselect(key="filter_service").unselect("db"))
    run(at.multiselect(key="filter_state").set_value(["triaged"]))
    assert "No incidents match" in at.info[0].value
    assert (at.query_params["incident"], shown_incident(at)) == (pinned, f"Incident #{pinned}")


def test_detail_shows_since_when_how_bad_timeline_and_evidence(incidents):
    at = page(incident=incidents["shop"])
    assert shown_incident(at) == f"Incident #{incidents['shop']}"
    header = texts(at.markdown)
    assert "**critical**" in header and "open **" in header and "last failure **now**" in header
    assert ":orange[not acknowledged]" in header
    timeline = at.tabs[0].dataframe[0].value
    assert list(timeline["change"])[0] == "- → observed"
    assert "opened: shop-web failing" in list(timeline["message"])[0]
    evidence = texts(at.tabs[1].markdown)
    assert "`[STATUS] == 200 -> got 503`" in evidence
    assert "http probe of shop-web failed" in evidence
    assert "./trends?service=shop&from=" in header

    at = page(incident=incidents["db"])
    assert at.query_params["incident"] == str(incidents["db"])
    assert "cannot connect: connection refused" in texts(at.tabs[1].markdown)


def test_a_deep_link_opens_exactly_that_incident_or_says_it_does_not_exist(incidents, ledger):
    act(ledger, incidents["shop"], "resolve", "fixed", actor=Identity("alice", "operator", "test"))
    at = page(incident=incidents["shop"])  # resolved: not in the default list, shown all the same
    assert shown_incident(at) == f"Incident #{incidents['shop']}" and at.query_params["incident"] == str(incidents["shop"])
    assert ":gray-badge[resolved]" in texts(at.markdown)
    assert listed_services(at) == ["db"]

    at = page(incident=999)
    assert shown_incident(at) is None and at.query_params["incident"] == "999"
    assert texts(at.error) == "Incident #999 does not exist. Pick one from the list above."
    at = page()
    at.query_params["incident"] = "abc"
    at = run(at)
    assert "does not name an incident" in texts(at.error) and shown_incident(at) is None


def test_triage_moves_the_incident_to_triaged_and_says_so(incidents, ledger):
    incident = incidents["shop"]
    at = page(incident=incident)
    run(at.button(key=f"triage-{incident}").click())

    detail = queries.incident_detail(ledger, incident)
    assert detail.state == "triaged"
    assert (detail.timeline[-1].actor, detail.timeline[-1].to_state) == (operator_name(), "triaged")
    assert ":orange-badge[triaged]" in texts(at.markdown)
    assert texts(at.success) == f"Incident #{incident} is now triaged"


@pytest.mark.parametrize("action", ["resolve", "suppress"])
def test_an_action_with_a_reason_asks_in_a_dialog_and_ends_on_the_same_incident(incidents, ledger, action):
    incident = incidents["shop"]
    at = page(incident=incident)
    run(at.button(key=f"{action}-{incident}").click())
    submit = f"FormSubmitter:{action}-form-{incident}-{action.title()}"

    run(at.button(key=submit).click())  # no reason: refused, and the dialog stays open with the error
    assert "needs a reason" in texts(at.error)
    assert queries.incident_detail(ledger, incident).state == "observed"
    assert at.button(key=submit)

    at.text_area(key=f"{action}-reason-{incident}").input("demo service fixed")
    run(at.button(key=submit).click())
    detail = queries.incident_detail(ledger, incident)
    assert detail.state == {"resolve": "resolved", "suppress": "suppressed"}[action]
    assert detail.timeline[-1].message == "demo service fixed"
    assert not at.error and not at.text_area  # the dialog closed
    assert texts(at.success) == f"Incident #{incident} is now {detail.state}: demo service fixed"
    assert shown_incident(at) == f"Incident #{incident}" and at.query_params["incident"] == str(incident)


def test_silence_this_is_prefilled_and_previews_what_it_would_cover(incidents, ledger):
    incident = incidents["shop"]
    at = page(incident=incident)
    run(at.button(key=f"silence-{incident}").click())
    matchers = at.text_area(key=f"silence-this-{incident}")
    assert matchers.value == 'service="shop"\ntarget="shop-web"'
    preview = texts(at.markdown)
    assert "1 firing finding(s), 1 target(s) of the policy" in preview
    [covered] = [frame.value for frame in at.dataframe if "finding" in frame.value.columns]
    assert list(covered["target"]) == ["shop-web"]

    run(matchers.input('service=~"shop|db"'))
    assert "2 firing finding(s), 2 target(s) of the policy" in texts(at.markdown)
    run(at.text_area(key=f"silence-this-{incident}").input("service=~("))
    assert "not a valid regex" in texts(at.error)

    run(at.text_area(key=f"silence-this-{incident}").input('service="shop"'))
    at.text_input(key=f"silence-this-comment-{incident}").input("deploy of shop")
    run(at.button(key=f"FormSubmitter:silence-this-form-{incident}-Create silence").click())
    assert not at.error, texts(at.error)
    [silence] = queries.list_silences(ledger, utcnow())
    assert (silence.matchers, silence.comment) == ([{"label": "service", "op": "=", "value": "shop"}], "deploy of shop")
    assert texts(at.success) == f'Silence #{silence.id} created for 2h: {{service="shop"}}'
    assert shown_incident(at) == f"Incident #{incident}"


def test_nothing_open_shows_the_overview_of_what_is_watched(data_dir, policy_dir, monkeypatch):
    monkeypatch.setenv(ENV_POLICY, str(policy_dir(TARGETS.format(url="http://127.0.0.1:9/"))))
    at = page()
    assert "No incidents" in at.info[0].value
    overview = texts(at.markdown)
    assert ":gray-badge[:material/help: no data]" in overview and "**shop**" in overview and "**db**" in overview
    assert sorted(v for frame in at.dataframe for v in frame.value["name"]) == ["db-ping", "shop-web"]


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


def test_a_rule_findings_evidence_shows_its_query_window_threshold_value_and_points(data_dir, ledger):
    from ledger.db import write_session
    from ledger.repo import incidents as repo

    now = utcnow()
    data = {"query": 'http_request_duration_seconds{service="shop"}', "window": "1m", "reduce": "p95", "op": ">",
            "threshold": 0.5, "value": 1.2,
            "points": [[(now - timedelta(seconds=s)).isoformat(), v] for s, v in ((50, 0.3), (30, 1.1), (10, 1.2))]}
    spec = repo.FindingSpec(rule="rule:shop-p95", target="shop", service="shop", severity="warning",
                            summary="shop-p95 (service=shop): p95 over the last 1m was 1.2 s (> 0.5 s)",
                            correlation_key="shop/api")
    with write_session(ledger) as session:
        incident = repo.open_finding(session, spec, [repo.RuleEvidence(spec.summary, data, now)], now).incident_id
    at = page(incident)
    evidence = at.tabs[1]
    assert 'http_request_duration_seconds{service="shop"}' in [c.value for c in evidence.code]
    assert "window **1m** · reduction **p95** · threshold **> 0.5** · value **1.2**" in texts(evidence.markdown)
    [chart] = [json.loads(c.proto.spec) for c in evidence.get("plotly_chart")]
    assert chart["data"][0]["y"] == [0.3, 1.1, 1.2]
    assert chart["layout"]["shapes"][0]["y0"] == 0.5  # the threshold, drawn across


def test_the_review_tab_shows_the_post_mortem_and_offers_it_and_the_notebook(incidents):
    """The Review tab: the post-mortem draft as `workbench incidents postmortem` writes it, with
    the review notebook of this incident to download, its parameters filled in."""
    at = page(incident=incidents["shop"])
    review = at.tabs[6]
    assert review.label == "Review"
    draft = texts(review.markdown)
    assert f"#### Post-mortem: incident #{incidents['shop']}: shop-web failing" in draft
    assert "##### Timeline" in draft and "##### Cause" in draft
    labels = [b.label for b in review.get("download_button")]
    assert labels == ["Post-mortem (.md)", "Review notebook (.ipynb)"]
    assert [b.label for b in review.button] == ["Run it for an HTML report"]
    at = run(review.button[0].click())
    report = [b for b in at.tabs[6].get("download_button") if b.label == "Report (.html)"]
    assert len(report) == 1  # the notebook ran in a real kernel and was exported
