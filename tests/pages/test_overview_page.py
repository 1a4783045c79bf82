"""The Overview page's Workers section under Streamlit's AppTest, through the real st.navigation
entrypoint, on a real ledger and a fixed clock: with fleet: in the policy, every worker of the
fleet with its state, and a silent one called out above everything else."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, ROOT
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.repo import fleet

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fleet_ledger(tmp_path, monkeypatch):
    """A policy with fleet: and a ledger where three workers joined: one live and holding the house
    duties, one silent for two minutes, one stopped on purpose."""
    policy = tmp_path / "policy"
    shutil.copytree(ROOT / "policies", policy)
    with (policy / "settings.yaml").open("a") as settings:
        settings.write("\nfleet:\n  dead_after: 60s\n")
    monkeypatch.setenv(ENV_POLICY, str(policy))
    monkeypatch.setenv(ENV_DATA, str(tmp_path / "data"))
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    engine = open_ledger(sqlite_url(tmp_path / "data"))
    for name, location, at, house in (("main", "eu-1", NOW, True), ("office-1", "office", NOW - timedelta(minutes=2),
                                                                   False), ("spare", "eu-1", NOW, False)):
        with write_session(engine) as session:
            fleet.heartbeat(session, fleet.Beat(name=name, location=location, host=f"{name}.lan", pid=7,
                                                started_at=NOW - timedelta(hours=1), house=house, buckets=2,
                                                targets=900, probes_per_second=15.0, policy_digest="5f0c2a9e1b7d"),
                            at)
    with write_session(engine) as session:
        fleet.leave(session, "spare", NOW)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield engine
    engine.dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_fleets_workers_are_listed_and_a_silent_one_called_out(fleet_ledger):
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30).run()
    at = at.switch_page("../pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "1 worker of the fleet silent: office-1; its buckets go to the others (Workers, below)"]
    assert "Workers" in [h.value for h in at.subheader]
    [table] = [d.value for d in at.dataframe if "location" in d.value.columns]
    rows = table[["name", "state", "location", "heartbeat", "house"]].to_dict("records")
    assert rows == [
        {"name": "main", "state": "live", "location": "eu-1", "heartbeat": "now", "house": True},
        {"name": "spare", "state": "stopped", "location": "eu-1", "heartbeat": "now", "house": False},
        {"name": "office-1", "state": "silent", "location": "office", "heartbeat": "2m ago", "house": False},
    ]
