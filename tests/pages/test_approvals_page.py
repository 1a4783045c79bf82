"""The Approvals page under Streamlit's AppTest, through the real st.navigation entrypoint, on a
real ledger and a fixed clock: the inbox shows the incident and its evidence, the exact action
and parameters, the risk and the gate's checks; approve or reject with a reason; the history
shows decisions and runs, secrets masked."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ledger.db
from app.access import os_user as operator_name
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from policies.schema import HttpTarget
from probes.context import observe
from probes.cycle import record
from remediation import flow
from tests.remediation.support import NOW, policy, run_pass

ACTIONS = """
actions:
  - id: fault-off
    description: Switch the shop's fault off
    runner:
      kind: command
      argv: [/bin/echo, "fault off in {{zone}}", --token, "{{token}}"]
    parameters:
      zone: {choices: [eu, us], default: eu}
      token: {secret: true, default: "${SHOP_TOKEN}"}
    risk: containment
    postures: [demo]
    enabled: true
"""
SECRET = "shop-token-5f4e3d2c1b"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """The page's ledger and policy live in fresh directories, its clock stands at NOW; the
    cached engine is dropped around each test."""
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    for name in (ENV_DB, "WORKBENCH_APPROVAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    st.cache_resource.clear()
    yield data, policy(policy_dir, actions=ACTIONS)
    st.cache_resource.clear()


@pytest.fixture
def engine(dirs):
    engine = open_ledger(sqlite_url(dirs[0]))
    yield engine
    engine.dispose()


def failing_incident(engine) -> int:
    target = HttpTarget(kind="http", name="shop-web", service="shop", url="http://127.0.0.1:9/", failure_threshold=1,
                        conditions=["[STATUS] == 200"])
    record(engine, target, observe(target, NOW, 12.0, {"STATUS": 503}, status=503), now=lambda: NOW)
    return queries.list_incidents(engine)[0].id


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def approvals_page() -> AppTest:
    at = run(AppTest.from_file(str(STREAMLIT_APP), default_timeout=30))
    return run(at.switch_page("../pages/approvals.py"))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_an_empty_inbox(engine):
    at = approvals_page()
    assert texts(at.info) == "No action request is waiting for a decision.\nNo decisions yet."


def test_the_inbox_shows_what_the_operator_decides_on_and_approving_records_who(engine, dirs):
    incident = failing_incident(engine)
    flow.propose(engine, dirs[1], incident, "fault-off", {"zone": "us"}, proposer="bob", reason="shop is down", now=NOW)
    at = approvals_page()

    shown = texts(at.markdown)
    assert (f":orange-badge[containment] **#1 fault-off** on [incident #{incident}](./?incident={incident}) "
            ":red-badge[observed] `shop-web failing: [STATUS] == 200 -> got 503`") in shown
    assert at.code[0].value == "/bin/echo 'fault off in us' --token '${SHOP_TOKEN}'"
    assert "Parameters: `zone=us, token=${SHOP_TOKEN}`" in shown
    assert ":green[✔] **posture**: posture demo; the action is allowed in demo" in shown
    assert ":green[✔] **approval**: required by actions.yaml" in shown
    assert ":red[✘] `[STATUS] == 200 -> got 503`" in shown
    assert texts(at.caption).startswith("Proposed by bob 2026-03-01 12:00:00 UTC (now): shop is down. Decide by "
                                        "2026-03-01 12:15:00 UTC (in 15m).")

    at.text_input(key="reason-1").input("evidence is clear")
    at = run(at.button(key="FormSubmitter:decide-1-Approve").click())
    approved = queries.action_request(engine, 1)
    assert (approved.status, approved.decided_by, approved.decision_reason) == (
        "approved", operator_name(), "evidence is clear")
    assert "No action request is waiting for a decision." in texts(at.info)
    history = at.dataframe[0].value
    assert list(history["status"]) == ["approved"] and list(history["token"]) == [approved.approval_token]


def test_rejecting_needs_a_reason(engine, dirs):
    flow.propose(engine, dirs[1], failing_incident(engine), "fault-off", {}, proposer="bob", reason="r", now=NOW)
    at = approvals_page()
    at = run(at.button(key="FormSubmitter:decide-1-Reject").click())
    assert texts(at.error) == "Reject action request #1: rejecting an action request needs a reason"
    assert queries.action_request(engine, 1).status == "pending"
    at.text_input(key="reason-1").input("wrong zone")
    run(at.button(key="FormSubmitter:decide-1-Reject").click())
    assert (queries.action_request(engine, 1).status, queries.action_request(engine, 1).decided_by) == (
        "rejected", operator_name())


def test_the_history_shows_runs_with_secrets_masked(engine, dirs):
    data, pol = dirs
    flow.propose(engine, pol, failing_incident(engine), "fault-off", {}, proposer="bob", reason="r", now=NOW)
    at = approvals_page()
    at.text_input(key="reason-1").input("go")
    run(at.button(key="FormSubmitter:decide-1-Approve").click())
    # the worker signs with the key the page made in the data directory: no key in its environment
    run_pass(engine, pol, data, NOW, env={"SHOP_TOKEN": SECRET, "WORKBENCH_APPROVAL_KEY": ""})

    at = approvals_page()
    row = at.dataframe[0].value.iloc[0]
    assert (row["status"], row["verification"]) == ("succeeded", "skipped")
    assert row["output"] == "exit status 0\nfault off in eu --token ***\n"
    assert row["parameters"] == "zone=eu, token=${SHOP_TOKEN}"
    assert SECRET not in str(at.dataframe[0].value.to_dict()) + texts(at.markdown) + texts(at.code)
