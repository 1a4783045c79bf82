"""The Trends page under Streamlit's AppTest, through the real st.navigation entrypoint: probe
samples written through the real store and rolled up, an incident and a maintenance window in
a real ledger; charts with their values, the previous period dashed, the bands; empty states."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger, sqlite_url, utcnow, write_session
from ledger.repo import incidents, silences
from ledger.rollups import Rollups, floor_time
from ledger.samples import SampleStore
from policies.loader import load_policy
from policies.selectors import parse_matcher
from probes.context import observe
from probes.cycle import probe_samples

TARGETS = """
targets:
  - {name: shop-web, kind: http, service: shop, url: "http://127.0.0.1:9/", interval: 10s,
     conditions: ["[STATUS] == 200"]}
  - {name: billing-web, kind: http, service: billing, url: "http://127.0.0.1:9/", interval: 10s}
"""
MINUTE = timedelta(minutes=1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch, policy_dir):
    """A fresh data directory and policy for the page; its caches are dropped around each test."""
    directory = tmp_path / "data"
    monkeypatch.setenv(ENV_DATA, str(directory))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir(TARGETS)))
    monkeypatch.delenv(ENV_DB, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield directory
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def shop(data_dir) -> dict:
    """90 minutes of shop-web probes (every 10 s, 10..60 ms, the first run of each minute a 503)
    written and rolled up as the worker does; an incident from minute 70 to 75 and a maintenance
    window from minute 80 to 85. Returns the start and the ids."""
    target = load_policy(data_dir.parent / "policy").target("shop-web")
    store = SampleStore(data_dir / "samples")
    start = floor_time(utcnow(), MINUTE) - 90 * MINUTE
    for minute in range(88):
        for run in range(6):
            status, duration = (503 if run == 0 else 200), 10.0 * (run + 1)
            at = start + minute * MINUTE + timedelta(seconds=10 * run)
            store.append(probe_samples(target, observe(target, at, duration, {"STATUS": status}, status=status)))
    store.flush()
    Rollups(store).maintain(timedelta(seconds=20), {"1m": timedelta(days=35), "1h": timedelta(days=400)})
    engine = open_ledger(sqlite_url(data_dir))
    spec = incidents.FindingSpec(rule="probe:http", target="shop-web", service="shop", severity="critical",
                            summary="shop-web failing", correlation_key="shop/shop-web")
    with write_session(engine) as session:
        incident = incidents.open_finding(session, spec, [], start + 70 * MINUTE).incident_id
        incidents.transition(session, incident, "resolved", "alice", "fixed", start + 75 * MINUTE)
        window = silences.add_silence(session, matchers=[parse_matcher("service=shop").as_dict()],
                                  starts_at=start + 80 * MINUTE, ends_at=start + 85 * MINUTE, author="alice",
                                  comment="db upgrade", now=start, kind="maintenance").id
    engine.dispose()
    return {"start": start, "incident": incident, "window": window}


def page(service: str | None = None, range_key: str | None = None) -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=30))
    at.switch_page("../pages/trends.py")
    run(at)
    if service is not None:
        run(at.selectbox(key="trends_service").select(service))
    if range_key is not None:
        run(at.radio(key="trends_range").set_value(range_key))
    return at


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """The Plotly figures on the page, by title."""
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {figure["layout"]["title"]["text"]: figure for figure in figures}


def traces(figure: dict) -> dict[str, dict]:
    return {trace["name"]: trace for trace in figure["data"]}


def values(trace: dict) -> set[float]:
    return {round(y, 6) for y in trace["y"]}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_charts_show_the_golden_signals_with_the_previous_period_and_bands(shop):
    at = page("shop", "1h")
    figures = charts(at)
    assert sorted(figures) == ["Error ratio", "Latency", "Traffic"]
    assert "Saturation: no samples for shop in the last 1h." in [info.value for info in at.info]

    latency = traces(figures["Latency"])
    assert sorted(latency) == ["p50", "p50, previous 1h", "p95", "p95, previous 1h", "p99", "p99, previous 1h"]
    assert values(latency["p50"]) == {35.0} and values(latency["p95"]) == {57.5}
    assert values(latency["p99, previous 1h"]) == {59.5} and latency["p99, previous 1h"]["line"]["dash"] == "dash"
    assert "dash" not in latency["p99"]["line"]
    assert latency["p95"]["hovertemplate"].startswith("p95: %{y:.1f} ms")
    assert values(traces(figures["Traffic"])["probe runs"]) == {6.0}
    errors = traces(figures["Error ratio"])["error ratio"]
    assert values(errors) == {round(1 / 6, 6)} and "%{y:.2%}" in errors["hovertemplate"]

    start = shop["start"]
    for figure in figures.values():
        spans = sorted((when(s["x0"]), when(s["x1"])) for s in figure["layout"]["shapes"])
        assert spans == [(start + 70 * MINUTE, start + 75 * MINUTE), (start + 80 * MINUTE, start + 85 * MINUTE)]
        labels = sorted(a["text"] for a in figure["layout"]["annotations"])
        assert labels == [f"incident #{shop['incident']} (critical)", f"maintenance #{shop['window']}: db upgrade"]
    bands = at.dataframe[0].value
    assert list(bands["kind"]) == ["incident", "maintenance"]


def test_a_day_has_no_previous_samples_and_a_service_without_samples_says_so(shop):
    at = page("shop")
    assert at.selectbox(key="trends_service").options == ["billing", "shop"]
    assert at.radio(key="trends_range").value == "1h"  # the default: what is happening now
    at = run(at.radio(key="trends_range").set_value("24h"))
    assert sorted(traces(charts(at)["Latency"])) == ["p50", "p95", "p99"]  # nothing was probed the day before

    run(at.selectbox(key="trends_service").select("billing"))
    assert not at.get("plotly_chart")
    assert any(info.value.startswith("No samples for billing in the last 24h") for info in at.info)
    assert "No incidents, silences or maintenance windows for billing" in at.caption[-1].value


def test_no_services_says_how_to_add_one(data_dir, policy_dir):
    policy_dir("targets: []\n")
    at = page()
    assert "No services yet" in at.info[0].value


def test_the_address_names_the_service_and_a_range_as_the_incident_page_links_it(shop):
    start = shop["start"]
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    run(at)
    at.switch_page("../pages/trends.py")
    at.query_params.update({"service": "shop", "from": f"{start + 60 * MINUTE:%Y-%m-%dT%H:%MZ}",
                            "to": f"{start + 80 * MINUTE:%Y-%m-%dT%H:%MZ}"})
    at = run(at)
    assert at.selectbox(key="trends_service").value == "shop"
    assert at.radio(key="trends_range").value == "linked"
    latency = charts(at)["Latency"]
    assert [when(x) for x in latency["layout"]["xaxis"]["range"]] == [start + 60 * MINUTE, start + 80 * MINUTE]
    assert sorted(traces(latency)) == ["p50", "p50, previous 20m", "p95", "p95, previous 20m", "p99",
                                       "p99, previous 20m"]

    at.query_params.update({"from": "yesterday", "to": "today"})
    at = run(at)
    assert "use ISO 8601 times" in at.error[0].value and at.radio(key="trends_range").value == "1h"


LOCATED = TARGETS + """  - {name: shop-api, kind: http, service: shop, url: "http://127.0.0.1:9/", interval: 10s,
     locations: [eu-1, office], conditions: ["[STATUS] == 200"]}
"""


def test_a_target_probed_from_several_locations_splits_by_location(data_dir, policy_dir):
    """shop-api from eu-1 (all well, 20 ms) and from the office (every other run a 503, 80 ms), as a
    fleet's workers label their samples: every location together, then each alone."""
    policy_dir(LOCATED)
    target = load_policy(data_dir.parent / "policy").target("shop-api")
    store = SampleStore(data_dir / "samples")
    start = floor_time(utcnow(), MINUTE) - 40 * MINUTE
    for minute in range(38):
        for run_ in range(6):
            at = start + minute * MINUTE + timedelta(seconds=10 * run_)
            for location, duration, status in (("eu-1", 20.0, 200), ("office", 80.0, 503 if run_ % 2 else 200)):
                result = observe(target, at, duration, {"STATUS": status}, status=status)
                store.append(probe_samples(target, result, location))
    store.flush()
    Rollups(store).maintain(timedelta(seconds=20), {"1m": timedelta(days=35), "1h": timedelta(days=400)})

    at = page("shop", "1h")
    assert at.radio(key="trends_location").options == ["every location", "eu-1", "office"]
    assert values(traces(charts(at)["Traffic"])["probe runs"]) == {12.0}
    assert values(traces(charts(at)["Latency"])["p50"]) == {80.0}  # the highest of the two series

    at = run(at.radio(key="trends_location").set_value("eu-1"))
    assert values(traces(charts(at)["Traffic"])["probe runs"]) == {6.0}
    assert values(traces(charts(at)["Latency"])["p50"]) == {20.0}
    assert values(traces(charts(at)["Error ratio"])["error ratio"]) == {0.0}

    at = run(at.radio(key="trends_location").set_value("office"))
    assert values(traces(charts(at)["Latency"])["p50"]) == {80.0}
    assert values(traces(charts(at)["Error ratio"])["error ratio"]) == {0.5}
