"""The operator's feedback on findings (useful, noise, expected), from the command line and the
Incidents page, on a real ledger: kept with who and why, noted on the incident's timeline, shown
with the findings, and read by backtests (a firing marked useful counts for precision; marked
noise is counted) and rule suggestions (a rule whose firings were called noise is noisy)."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.access import os_user as operator_name
from app.cli import main
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from detectors.cycle import run_rules
from ledger.db import open_ledger, sqlite_url
from ledger.lifecycle import STATES
from ledger.queries import incident_detail, list_incidents
from ledger.samples import SampleStore
from policies.loader import load_policy
from tests.detectors.history import END, RULES, T0, minutes, write_history
from tests.remediation.support import write_policy


@pytest.fixture
def lived(tmp_path, monkeypatch):
    """The known history run live, minute by minute: shop-latency opened two incidents (65 and
    245 min), each with one finding. Returns run(*args) of the command line and the engine."""
    for name in (ENV_POLICY, ENV_DATA, ENV_DB):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: END)
    policy = write_policy(tmp_path / "policy", targets="targets: []\nallow_empty: true\n",
                          rules=RULES.replace("rules:", "learning: {noise_budget: 100}\nrules:"))
    store = SampleStore(tmp_path / "var" / "samples", now=lambda: END)
    write_history(store)
    engine = open_ledger(sqlite_url(tmp_path / "var"))
    only_latency = load_policy(policy).model_copy()
    only_latency.rules.rules[:] = [r for r in only_latency.rules.rules if r.name == "shop-latency"]
    for m in range(0, 265):  # both episodes have ended by 260 min
        run_rules(engine, store, only_latency, now=minutes(m))

    def run(*args: str):
        status = main(["--policy", str(policy), "--data", str(tmp_path / "var"), *args])
        return status

    yield run, engine, tmp_path
    engine.dispose()


def test_feedback_from_the_command_line_is_kept_shown_and_read_by_backtests(lived, capsys):
    run, engine, _ = lived
    first, second = sorted(i.id for i in list_incidents(engine))
    assert run("incidents", "feedback", str(first), "--verdict", "useful") == 0
    assert run("incidents", "feedback", str(second), "--verdict", "noise", "--reason", "a deploy, known") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"incident {second}: finding(s) #2 marked noise"
    detail = incident_detail(engine, second)
    assert detail.findings[0].feedback == "noise"
    assert detail.timeline[-1].message == "finding #2 (rule:shop-latency) marked noise: a deploy, known"
    assert detail.timeline[-1].actor == operator_name()

    run("rules", "backtest", "shop-latency", "--from", T0.isoformat(), "--to", END.isoformat(), "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert report["marked"] == {"useful": 1, "noise": 1}
    assert report["precision"] == 0.5  # its own incidents are left out: only the firing marked useful counts
    assert report["live"] == {"both": 2, "replay_only": 0, "live_only": 0}


def test_a_rule_whose_firings_were_called_noise_gets_a_tuning_that_fires_less(lived, capsys):
    """Held 20 min, shop-latency fires at the 30 min excursion only: the one marked useful."""
    run, engine, _ = lived
    first, second = sorted(i.id for i in list_incidents(engine))
    run("incidents", "feedback", str(first), "--verdict", "useful")
    run("incidents", "feedback", str(second), "--verdict", "expected")
    capsys.readouterr()
    assert run("rules", "suggest") == 0
    capsys.readouterr()
    run("rules", "suggestions", "--format", "json")
    [tuned] = [s for s in json.loads(capsys.readouterr().out) if s["replaces"] == "shop-latency"]
    assert (tuned["name"], tuned["rule"]["for"]) == ("shop-latency-tuned", "20m")
    assert tuned["backtest"]["current"]["marked_noise"] == 1 and tuned["backtest"]["suggested"]["marked_noise"] == 0


def test_feedback_errors_are_one_line(lived, capsys):
    run, engine, _ = lived
    first = sorted(i.id for i in list_incidents(engine))[0]
    assert run("incidents", "feedback", str(first), "--verdict", "noise", "--finding", "99") == 1
    assert capsys.readouterr().err == f"workbench: incident {first} has no finding 99\n"
    assert run("incidents", "feedback", "99", "--verdict", "noise") == 1
    assert capsys.readouterr().err == "workbench: no incident with id 99\n"


def test_feedback_from_the_incidents_page(lived, monkeypatch):
    _, engine, tmp_path = lived
    monkeypatch.setenv(ENV_DATA, str(tmp_path / "var"))
    monkeypatch.setenv(ENV_POLICY, str(tmp_path / "policy"))
    st.cache_resource.clear()
    first = sorted(i.id for i in list_incidents(engine))[0]
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    at.query_params["incident"] = str(first)
    at = at.run()
    at = at.multiselect(key="filter_state").set_value(list(STATES)).run()  # its incidents are resolved
    at.radio(key=f"feedback-verdict-{first}").set_value("noise")
    at.text_input(key=f"feedback-reason-{first}").input("flapping probe")
    at = at.button(key=f"FormSubmitter:feedback-{first}-Record").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert incident_detail(engine, first).findings[0].feedback == "noise"
    st.cache_resource.clear()
