"""The Routing page and the incident's Hypotheses tab under Streamlit's AppTest, through the
real st.navigation entrypoint, on a real ledger with decisions made by the router (through the
official ollama client and recorded Ollama servers) and decisions imported from another system."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

import ledger.db
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from hypotheses.imports import import_decisions
from hypotheses.refine import request, run_refinement
from ledger import queries
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.repo import hypotheses
from ledger.samples import SampleStore
from ledger.tables import RoutingDecision
from policies.loader import load_policy
from tests.hypotheses.conftest import VALID, down, provider
from tests.hypotheses.recorded import RecordedOllama
from tests.hypotheses.seed import NOW, load_case, seed
from tests.support import ROOT

GATEWAY = b"""{"ts": "2026-03-01T10:30:00Z", "task": "hypothesis", "actual": "cloud", "request_id": "g1", "tokens": 50}
{"ts": "2026-03-01T11:40:00Z", "task": "summary", "actual": "local", "request_id": "g2"}
"""


@pytest.fixture
def model():
    server = RecordedOllama([VALID])
    yield server
    server.close()


@pytest.fixture
def workbench(tmp_path, monkeypatch, model):
    """The server-errors case in a fresh data directory, a policy routing to a recorded model
    (a down primary first), the page's clock at NOW; the cached engine is dropped around each test."""
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    policy_dir.mkdir()
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", policy_dir)
    (policy_dir / "routing.yaml").write_text(yaml.safe_dump({
        "providers": {"primary": provider(down()), "local": provider(model.url),
                      "cloud": provider(model.url, privacy="remote")},
        "routes": {"hypothesis": {"chain": ["primary", "local"], "daily_token_budget": 1000}}}))
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    st.cache_resource.clear()
    st.cache_data.clear()
    engine = open_ledger(sqlite_url(data))
    store = SampleStore(data / "samples", now=lambda: NOW)
    case, _ = load_case(ROOT / "tests" / "hypotheses" / "cases" / "server-errors")
    incident_id = seed(case, engine, store)
    yield engine, store, load_policy(policy_dir), incident_id
    engine.dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def routing_page() -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=30))
    return run(at.switch_page("../pages/routing.py"))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def refine_once(workbench) -> None:
    engine, store, policy, incident_id = workbench
    run_refinement(engine, store, policy, request(engine, incident_id, "ana", NOW), [], now=lambda: NOW)


def test_decisions_charts_filters_and_drill_down(workbench):
    engine, _, policy, incident_id = workbench
    refine_once(workbench)
    import_decisions(engine, GATEWAY, "gateway.jsonl", policy.routing)

    at = routing_page()
    assert [m.value for m in at.metric] == ["3", "100%", "0", "170", "0"]
    assert sorted(at.dataframe[0].value["reason"]) == ["failover", "privacy", "undeclared"]
    assert len(at.get("plotly_chart")) == 4

    run(at.multiselect(key="routing_source").select("workbench"))
    assert list(at.dataframe[0].value["actual"]) == ["local"]
    detail = texts(at.markdown)
    assert "Route `primary` › `local` · expected `primary` · declared `primary` · used `local` · reason **failover**" \
        in detail
    assert "primary: down: cannot connect to http://127.0.0.1:" in texts(at.caption)
    assert at.get("page_link")[0].proto.label == f"Incident #{incident_id}"

    run(at.multiselect(key="routing_source").unselect("workbench"))
    run(at.multiselect(key="routing_task").select("summary"))
    assert list(at.dataframe[0].value["reason"]) == ["undeclared"]
    run(at.multiselect(key="routing_task").unselect("summary"))
    run(at.radio(key="routing_range").set_value("1h"))
    assert at.metric[0].value == "2", "the decision of 10:30 is more than an hour old"


def test_a_model_that_is_down_is_unserved_not_a_divergence(workbench):
    """Every retry while the only model is down is a decision no provider served: the route was
    followed, so the share that diverged stays at what routing chose."""
    engine, _, policy, incident_id = workbench
    refine_once(workbench)  # served by local after primary was down: a failover
    with write_session(engine) as session:
        for minute in range(4):
            hypotheses.add_routing_decision(session, RoutingDecision(
                at=NOW - timedelta(minutes=minute + 1), task="hypothesis", incident_id=incident_id,
                route=["primary", "local"], expected="primary", declared="primary", actual=None, reason="error",
                detail="primary: down; local: down", attempts=[]))
    at = routing_page()
    assert [m.value for m in at.metric] == ["5", "20%", "4", "120", "0"]
    assert sorted(at.dataframe[0].value["reason"]) == ["error", "error", "error", "error", "failover"]
    run(at.toggle(key="routing_divergent").set_value(True))
    assert list(at.dataframe[0].value["reason"]) == ["failover"]


def test_the_page_says_when_there_is_nothing_to_show(workbench):
    at = routing_page()
    assert "No routing decisions in the last 24h match these filters." in texts(at.info)


def test_the_incident_shows_the_draft_and_the_refinement_side_by_side(workbench):
    engine, _, _, incident_id = workbench
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    at.query_params["incident"] = str(incident_id)
    at = run(at)
    shown = texts(at.markdown)
    assert "#### Draft (rules)" in shown and "**1. shop answers with server errors (HTTP 503)**" in shown
    assert "No refinement yet" in texts(at.caption)
    cited = next(e for e in at.expander if e.label.startswith("Evidence it cites"))  # the first hypothesis's
    assert "http probe of shop-web failed: [STATUS] == 200 -> got 503" in texts(cited.markdown)

    run(at.button(key=f"refine-{incident_id}").click())
    assert queries.latest_hypothesis_runs(engine, [incident_id])[incident_id].status == "pending"
    assert at.button(key=f"refine-{incident_id}").disabled

    refine_once(workbench)  # what the worker does in the background
    at = run(at)
    shown = texts(at.markdown)
    assert "**What the model changed:** `target-itself`: rank 2 → 1" in shown
    assert "Routed to **local** (route primary › local; reason failover)" in texts(at.caption)
    model_side = shown[shown.index("#### Model refinement"):]
    assert model_side.index("**1. shop itself is failing") < model_side.index("**2. shop answers with server errors")

    run(at.button(key=f"check-draft-{incident_id}-server-errors-1").click())
    assert "2 recent runs, 2 failed" in texts(at.caption)
