"""Every audit entry names who acted, whatever the surface: one ledger under a policy with
``access:`` is worked from the command line (the OS user), the web app (a logged-in account, through
the real pages under AppTest), an API token (through the worker's endpoint) and a Slack answer (the
approver its list names); then every timeline entry, silence, feedback, proposal, approval and
suggestion decision is read back and must name exactly the identity of the surface that wrote it."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import streamlit as st
from aiohttp import web
from sqlmodel import select
from streamlit.testing.v1 import AppTest

import ledger.db
from app import access
from app.access import Identity
from app.answers import take_answer
from app.cli import main
from app.cli.serve import STREAMLIT_APP
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from app.worker.http import make_app
from app.worker.jobs import Worker
from ledger import queries
from ledger.db import open_ledger, read_session, sqlite_url, write_session
from ledger.repo import notifications as outbox
from ledger.repo import rules as rule_repo
from ledger.samples import SampleStore
from ledger.tables import ActionRequest, FindingFeedback, RuleSuggestion, Silence, TimelineEntry
from notifications.answers import Answer
from policies.holder import PolicyHolder
from policies.loader import load_policy
from policies.schema import HttpTarget
from probes.context import observe
from probes.cycle import record
from tests.remediation.support import NOW, write_policy

WEB = Identity("ann@example.com", "approver", "web app", NOW)
TOKEN = "token deploy-bot"
SLACK = "bob"
ACTIONS = """
actions:
  - id: fault-off
    runner: {kind: command, argv: [/bin/echo, fault off]}
    risk: containment
    requires_approval: true
    postures: [demo]
    enabled: true
"""
TARGETS = """
targets:
  - {name: shop-web, kind: http, service: shop, url: "http://127.0.0.1:9/", interval: 1h}
"""
CHANNELS = """
channels:
  - {name: slack, kind: slack, token: "${SLACK_TOKEN}", channel: C1, signing_secret: "${SLACK_SIGNING}"}
approvers:
  - {channel: slack, identity: U42, operator: bob}
"""


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    data, policy_dir = tmp_path / "data", tmp_path / "policy"
    monkeypatch.setenv(ENV_DATA, str(data))
    monkeypatch.setenv(ENV_POLICY, str(policy_dir))
    for name in (ENV_DB, "WORKBENCH_APPROVAL_KEY", "WORKBENCH_INGEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING", "signing-secret-0123")
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    write_policy(policy_dir, targets=TARGETS, actions=ACTIONS, settings="access:\n  step_up_after: 1h\n")
    (policy_dir / "channels.yaml").write_text(CHANNELS)
    st.cache_resource.clear()
    yield data, policy_dir
    st.cache_resource.clear()


def failing(engine, name: str, service: str) -> int:
    target = HttpTarget(kind="http", name=name, service=service, url="http://127.0.0.1:9/", failure_threshold=1,
                        conditions=["[STATUS] == 200"])
    record(engine, target, observe(target, NOW, 12.0, {"STATUS": 503}, status=503), now=lambda: NOW)
    return next(i.id for i in queries.list_incidents(engine) if i.service == service)


def page(path: str | None = None, **params) -> AppTest:
    """A page of the web app in a session where ann@example.com has logged in."""
    at = AppTest.from_file(str(STREAMLIT_APP), default_timeout=30)
    at.session_state["identity"] = WEB
    for key, value in params.items():
        at.query_params[key] = str(value)
    at = run(at)
    return run(at.switch_page(path)) if path else at


def run(node) -> AppTest:
    at = node.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def cli(*args: str) -> None:
    assert main(list(args)) == 0


def through_the_api(engine, policy_dir, token: str, incident: int) -> int:
    worker = Worker(PolicyHolder(policy_dir, now=lambda: NOW), engine, SampleStore(policy_dir.parent / "samples"))

    async def post():
        runner = web.AppRunner(make_app(worker))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/incidents/{incident}/resolve"
        async with aiohttp.ClientSession() as client, client.post(
                url, data=json.dumps({"reason": "the deploy script fixed it"}),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as response:
            status = response.status
        await runner.cleanup()
        await worker.alert_batches.close()
        return status

    return asyncio.run(post())


def test_every_surface_records_its_own_identity(dirs):
    data, policy_dir = dirs
    engine = open_ledger(sqlite_url(data))
    shop, cart = failing(engine, "shop-web", "shop"), failing(engine, "cart-web", "cart")
    you = access.os_user()

    # The command line: the OS user.
    cli("approvals", "propose", str(shop), "fault-off", "--reason", "the shop answers 503")
    cli("silences", "add", "--match", "service=shop", "--duration", "1h", "--comment", "deploy")
    cli("incidents", "triage", str(shop))
    cli("incidents", "feedback", str(shop), "--verdict", "useful")
    with write_session(engine) as session:
        rule_repo.add_suggestion(session, RuleSuggestion(created_at=NOW, kind="new", name="shop-latency",
                                                         service="shop", rule={"name": "shop-latency"}))
    cli("rules", "reject", "1", "--reason", "we have one")

    # The web app: the logged-in account, through the pages.
    at = page(incident=shop)
    at = run(at.button(key=f"ack-{shop}").click())
    at.text_input(key="reason-1").input("the evidence is clear")
    run(at.button(key="FormSubmitter:decide-1-Approve").click())
    at = page("../pages/silences.py")
    run(at.button(key="expire-1").click())

    # An API token with the act scope, through the worker's endpoint.
    token = access.add_token(engine, "deploy-bot", ["act"], created_by=you, now=NOW)
    assert through_the_api(engine, policy_dir, token, shop) == 200

    # A Slack answer: the approver its list names.
    with write_session(engine) as session:
        nonce = outbox.new_prompt(session, channel="slack", purpose="acknowledge", incident_id=cart, now=NOW,
                                  expires_at=NOW.replace(hour=13))
    reply = take_answer(engine, load_policy(policy_dir), data, Answer("slack", "U42", "ack", nonce), NOW)
    assert reply == f"Acknowledged incident #{cart} as bob"

    with read_session(engine) as session:
        timeline = [(t.incident_id, t.to_state or t.message, t.actor)
                    for t in session.exec(select(TimelineEntry).order_by(TimelineEntry.id)) if t.actor != "workbench"]
        silence = session.exec(select(Silence)).one()
        request = session.exec(select(ActionRequest)).one()
        feedback = session.exec(select(FindingFeedback)).one()
        suggestion = session.get(RuleSuggestion, 1)

    def who(incident: int, what: str) -> list[str]:
        return [actor for at, said, actor in timeline if at == incident and what in said]

    assert {actor for _, _, actor in timeline} <= {you, WEB.name, TOKEN, SLACK}, timeline
    assert who(shop, "proposed by") == [you] and who(shop, "approved by") == [WEB.name]
    assert who(shop, "triaged") == [you] and who(shop, "resolved") == [TOKEN]
    assert who(shop, "marked useful") == [you]
    assert who(shop, "acknowledged") == [WEB.name] and who(cart, "acknowledged") == [SLACK]
    assert (silence.author, silence.expired_by) == (you, WEB.name)
    assert (request.proposed_by, request.decided_by) == (you, WEB.name)
    assert feedback.actor == you
    assert (suggestion.status, suggestion.decided_by) == ("rejected", you)
    engine.dispose()
