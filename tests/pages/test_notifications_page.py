"""The Notifications page, the inbox badge and the Acknowledge button under Streamlit's AppTest,
through the real st.navigation entrypoint, on a real ledger whose outbox a real delivery pass
filled (a working webhook receiver, a channel nothing listens on)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.access import os_user as operator_name
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.notifications.support import NOW, channels_policy, open_incident, run_pass
from tests.support import free_port


@pytest.fixture
def setup(tmp_path, monkeypatch, receiver):
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    st.cache_resource.clear()
    policy = channels_policy(policy_dir, f"""
channels:
  - {{name: hook, kind: webhook, url: "{receiver.url}/hook"}}
  - {{name: down, kind: webhook, url: "http://127.0.0.1:{free_port()}/x"}}
routes:
  - {{matchers: [service=shop], channels: [hook], group_wait: 1s}}
  - {{channels: [down], group_wait: 1s}}
attempts: 1
""")
    engine = open_ledger(sqlite_url(data))
    yield engine, policy
    engine.dispose()
    st.cache_resource.clear()


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(name: str) -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=30))
    return run(at.switch_page(f"../pages/{name}.py"))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_inbox_badge_and_the_page_show_what_went_where_and_what_failed(setup):
    engine, policy = setup
    delivered = open_incident(engine, service="shop")
    lost = open_incident(engine, service="cart")
    run_pass(engine, policy, NOW + timedelta(seconds=2))
    at = page("notifications")
    sidebar = texts(at.sidebar.markdown)
    assert ":red-badge[2 open] :orange-badge[2 not acknowledged]" in sidebar
    assert ":red-badge[:material/notifications_off: 1 undelivered]" in sidebar
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Open incidents"], metrics["Not acknowledged"], metrics["Undelivered"]) == ("2", "2", "1")
    shown = texts(at.markdown)
    assert f"to **down** · [incident #{lost}](./?incident={lost})" in shown and ":red[ClientConnectorError" in shown
    health = at.dataframe[0].value
    assert dict(zip(health["channel"], health["sent"])) == {"down": 0, "hook": 1}
    outbox = at.dataframe[1].value
    assert sorted(zip(outbox["incident"], outbox["status"])) == [(delivered, "sent"), (lost, "failed")]
    at = run(at.button(key="mark-read").click())
    assert "Every notification reached a channel" in texts(at.success)
    assert "undelivered" not in texts(at.sidebar.markdown)


def test_acknowledge_on_the_incident_records_who_and_is_done_once(setup):
    engine, _ = setup
    incident = open_incident(engine)
    at = page("incidents")
    assert at.button(key=f"ack-{incident}").label == "Acknowledge"
    at = run(at.button(key=f"ack-{incident}").click())
    detail = queries.incident_detail(engine, incident)
    assert detail.acknowledged_by == operator_name()
    assert f"acknowledged by **{operator_name()}**" in texts(at.markdown)
    assert at.button(key=f"ack-{incident}").disabled and at.button(key=f"ack-{incident}").label == "Acknowledged"
    assert ":orange-badge" not in texts(at.sidebar.markdown)
