"""The Rule suggestions page under Streamlit's AppTest, through the real st.navigation entrypoint,
on a real ledger and samples store holding exactly known history: a pending suggestion shows
where it came from, its backtest beside the current rule, a chart and the rule as a diff;
accepting it with a reason writes learned-rules.yaml; a decision needs a reason; rejecting keeps it."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from learning.suggestions import suggest
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.queries import list_incidents
from ledger.repo import incidents
from ledger.samples import SampleStore
from policies.loader import load_policy
from tests.detectors.history import END, minutes, write_history
from tests.learning.test_suggestions import LEARNING
from tests.remediation.support import write_policy


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: END)
    write_policy(policy_dir, targets="targets: []\nallow_empty: true\n", rules=LEARNING + "rules: []\n")
    store = SampleStore(data / "samples", now=lambda: END)
    write_history(store)
    engine = open_ledger(sqlite_url(data))
    with write_session(engine) as session:
        for opened, resolved in ((62, 95), (242, 260)):
            incidents.import_incident(session, incidents.PastIncident(
                "shop", f"shop slow at {opened}", "critical", minutes(opened), minutes(resolved)), "export.csv",
                "test", END)
    assert suggest(engine, store, load_policy(policy_dir), END) == [1]
    st.cache_resource.clear()
    st.cache_data.clear()
    yield policy_dir, engine
    engine.dispose()
    st.cache_resource.clear()


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rules_page() -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=60))
    return run(at.switch_page("../pages/rules.py"))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_a_suggestion_shows_where_it_came_from_its_backtest_and_its_rule(dirs):
    at = rules_page()
    shown = texts(at.markdown)
    assert ":green-badge[new rule] **#1 `shop-latency-learned`** · service `shop`" in shown
    assert "From incidents [#1](./?incident=1), [#2](./?incident=2) and the series " in shown
    backtest = at.dataframe[0].value
    assert list(backtest["rule"]) == ["suggested"] and list(backtest["recall"]) == ["100%"]
    assert list(backtest["caught"]) == ["#1, #2"]
    assert "above: 0.144" in at.code[0].value and at.code[0].language == "diff"
    assert len(at.get("plotly_chart")) == 1


def test_accepting_needs_a_reason_and_writes_the_learned_rules_file(dirs):
    policy_dir, engine = dirs
    at = rules_page()
    at = run(at.button(key="FormSubmitter:decide-1-Accept").click())
    assert texts(at.error) == "Say why: the reason is kept with the decision."
    assert not (policy_dir / "learned-rules.yaml").exists()
    at.text_input(key="reason-1").input("it caught both outages")
    at = run(at.button(key="FormSubmitter:decide-1-Accept").click())
    assert load_policy(policy_dir).learned == {"shop-latency-learned"}
    assert "No suggestion is waiting for review." in texts(at.info)
    decided = at.dataframe[0].value
    assert list(decided["status"]) == ["accepted"] and list(decided["reason"]) == ["it caught both outages"]
    assert len(list_incidents(engine)) == 2


def test_rejecting_keeps_the_reason(dirs):
    at = rules_page()
    at.text_input(key="reason-1").input("we page on errors only")
    at = run(at.button(key="FormSubmitter:decide-1-Reject").click())
    decided = at.dataframe[0].value
    assert list(decided["status"]) == ["rejected"] and list(decided["reason"]) == ["we page on errors only"]
