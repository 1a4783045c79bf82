"""The whole flow on a real ledger (SQLite and PostgreSQL) with real runners: proposal, gate,
approval, the worker's pass (run, verification, audit); replayed, altered and expired tokens,
disabled actions, cooldowns and attempts kept across a restart, failures never retried."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from app.access import Identity
from app.operator import act
from ledger import queries
from ledger.db import open_ledger, write_session
from ledger.tables import ActionRequest
from probes.ingest import ingest_alertmanager
from remediation import flow
from remediation.errors import GateRefused, RemediationError
from tests.remediation.support import (
    KEY,
    NOW,
    SHOP_TARGET,
    fault_off,
    open_incident,
    policy,
    run_pass,
)
from tests.support import SAMPLES

CANNED_ACTION = """
actions:
  - id: page-shop
    runner:
      kind: webhook
      method: POST
      url: "{url}/hooks/{{{{team}}}}"
      headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}
      body: '{{"incident": "shop", "team": "{{{{team}}}}"}}'
    parameters:
      team: {{choices: [shop, payments], default: shop}}
    risk: {risk}
    requires_approval: {approval}
    cooldown: {cooldown}
    max_attempts: {attempts}
    postures: [demo, staging]
    timeout: {timeout}
    enabled: {enabled}
"""


def canned_action(url: str, *, risk="containment", approval=True, cooldown="10m", attempts=3, timeout="5s",
                  enabled=True) -> str:
    return CANNED_ACTION.format(url=url, risk=risk, approval=str(approval).lower(), cooldown=cooldown,
                                attempts=attempts, timeout=timeout, enabled=str(enabled).lower())


ENV = {"HOOK_TOKEN": "hook-secret-0123456789"}


def approve(engine, pol, request_id: int, at=NOW, actor: str = "alice"):
    return flow.approve(engine, pol, KEY.encode(), request_id, actor=actor, reason="looks right", now=at)


def request(engine, request_id: int) -> queries.ActionRequestItem:
    return queries.action_request(engine, request_id)


def timeline(engine, incident_id: int) -> list[str]:
    """actor|kind|to_state|message of each entry; a run's measured duration reads "Ns"."""
    return [re.sub(r"after \d+\.\d+s", "after Ns", f"{t.actor}|{t.kind}|{t.to_state or ''}|{t.message}")
            for t in queries.incident_detail(engine, incident_id).timeline]


def tamper(engine, request_id: int, **changes) -> None:
    """Someone with write access to the ledger edits a request behind the workbench's back."""
    with write_session(engine) as session:
        row = session.get(ActionRequest, request_id)
        for name, value in changes.items():
            setattr(row, name, value)


# --- the path through the gate, the operator, the runner and verification -------------------


def test_an_approved_containment_action_contains_the_incident(engine, tmp_path, demo_target):
    pol = policy(tmp_path / "policy", targets=SHOP_TARGET.format(url=demo_target.url),
                 actions=fault_off(demo_target.port))
    demo_target.fault("errors")
    incident = open_incident(engine)
    proposed = flow.propose(engine, pol, incident, "fault-off", {}, proposer="bob", reason="demo is down", now=NOW)
    assert (proposed.status, proposed.plan) == ("pending", f"POST http://127.0.0.1:{demo_target.port}/fault?mode=none")
    assert [(c["check"], c["ok"]) for c in proposed.gate] == [
        ("catalog", True), ("enabled", True), ("posture", True), ("parameters", True), ("cooldown", True),
        ("attempts", True), ("incident", True), ("approval", True)]

    assert run_pass(engine, pol, tmp_path, NOW).results == {}, "nothing runs before the operator approves"
    approved = approve(engine, pol, proposed.id)
    outcome = run_pass(engine, pol, tmp_path, NOW + timedelta(seconds=5))

    assert (outcome.results, outcome.verifications) == ({"succeeded": 1}, {"passed": 1})
    done = request(engine, proposed.id)
    assert (done.status, done.verification, done.decided_by, done.approval_id) == (
        "succeeded", "passed", "alice", approved.approval_id)
    assert done.output.startswith("HTTP 200 OK\n") and '"mode": "none"' in done.output
    detail = queries.incident_detail(engine, incident)
    assert detail.state == "contained"
    assert timeline(engine, incident)[-5:] == [
        f"bob|action||action request #{proposed.id} fault-off: proposed by bob (demo is down); the gate let it "
        "through; waiting for the operator's approval until 2026-03-01 12:15:00 UTC",
        f"alice|action||action request #{proposed.id} fault-off: approved by alice: looks right (approval "
        f"{approved.approval_id}, good for one run until 2026-03-01 12:15:00 UTC)",
        f"workbench|action||action request #{proposed.id} fault-off: running: {proposed.plan}",
        f"workbench|action||action request #{proposed.id} fault-off: succeeded after Ns: HTTP 200 OK",
        f"workbench|transition|contained|action request #{proposed.id} fault-off: verified: shop-web passed again",
    ]
    assert detail.evidence[-1].summary == "http probe of shop-web passed"


def test_a_failed_verification_leaves_the_incident_where_it_was(engine, tmp_path, demo_target, canned):
    canned.reply({"status": "down"}, status=503)
    pol = policy(tmp_path / "policy", targets=SHOP_TARGET.format(url=canned.url), actions=fault_off(demo_target.port))
    incident = open_incident(engine)
    proposed = flow.propose(engine, pol, incident, "fault-off", {}, proposer="bob", reason="try it", now=NOW)
    approve(engine, pol, proposed.id)
    outcome = run_pass(engine, pol, tmp_path, NOW)

    assert (outcome.results, outcome.verifications) == ({"succeeded": 1}, {"failed": 1})
    assert request(engine, proposed.id).verification == "failed"
    assert queries.incident_detail(engine, incident).state == "observed"
    assert timeline(engine, incident)[-1] == (
        f"workbench|action||action request #{proposed.id} fault-off: verification failed: shop-web: "
        "[STATUS] == 200 -> got 503; the incident stays observed")


def test_recommended_actions_are_proposed_once_and_only_safe_ones_run_alone(engine, tmp_path, canned):
    actions = canned_action(canned.url, approval=False) + """
  - id: restart-shop
    runner: {kind: command, argv: [/bin/echo, restarting shop]}
    risk: disruptive
    requires_approval: false
    postures: [demo]
    enabled: true
recommend:
  - {category: availability, service: shop, actions: [page-shop]}
  - {category: availability, service: other, actions: [restart-shop]}
"""
    rules = "rules:\n  - {name: shop-errors, kind: errors, service: shop, above: 0.5, recommend: [restart-shop]}\n"
    pol = policy(tmp_path / "policy", actions=actions, rules=rules)
    incident = open_incident(engine)
    by_rule = open_incident(engine, target="shop-errors", rule="rule:shop-errors", category="errors")

    outcome = run_pass(engine, pol, tmp_path, NOW, env=ENV)
    rows = {(r.incident_id, r.action): r for r in queries.list_action_requests(engine, statuses=None)}
    assert outcome.proposed == 2 and outcome.results == {"succeeded": 1}
    assert rows.keys() == {(incident, "page-shop"), (by_rule, "restart-shop")}
    auto, disruptive = rows[(incident, "page-shop")], rows[(by_rule, "restart-shop")]
    assert (auto.status, auto.decided_by, auto.reason) == (
        "succeeded", "workbench", "recommended for availability incidents of shop")
    assert auto.decision_reason == "not required: a containment action with requires_approval: false"
    assert (disruptive.status, disruptive.reason) == ("pending", "recommended by rule shop-errors")
    assert next(c for c in disruptive.gate if c["check"] == "approval")["detail"] == (
        "required: a disruptive action always needs the operator's approval")
    assert canned.posted == [b'{"incident": "shop", "team": "shop"}']
    assert canned.requests[0][0] == "/hooks/shop" and canned.requests[0][2]["Authorization"] == (
        "Bearer hook-secret-0123456789")

    assert run_pass(engine, pol, tmp_path, NOW + timedelta(minutes=1), env=ENV).proposed == 0
    assert len(queries.list_action_requests(engine)) == 2


def test_the_gate_refuses_a_disabled_action_another_posture_and_bad_parameters(engine, tmp_path, canned):
    incident = open_incident(engine)
    disabled = policy(tmp_path / "a", actions=canned_action(canned.url, enabled=False))
    with pytest.raises(GateRefused, match=r"refused by the gate: enabled: enabled: false in actions.yaml"):
        flow.propose(engine, disabled, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    production = policy(tmp_path / "b", actions=canned_action(canned.url), settings="posture: production\n")
    with pytest.raises(GateRefused, match=r"posture: posture production; the action is allowed in demo, staging"):
        flow.propose(engine, production, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    good = policy(tmp_path / "c", actions=canned_action(canned.url))
    with pytest.raises(GateRefused, match=r"parameters: team: 'ops' is not one of shop, payments"):
        flow.propose(engine, good, incident, "page-shop", {"team": "ops"}, proposer="bob", reason="r", now=NOW)
    with pytest.raises(GateRefused, match=r"catalog: no action 'reboot-world' in actions.yaml"):
        flow.propose(engine, good, incident, "reboot-world", {}, proposer="bob", reason="r", now=NOW)
    refused = queries.list_action_requests(engine, statuses=["refused"])
    assert len(refused) == 4 and all(not r.decided_by for r in refused)
    assert run_pass(engine, good, tmp_path, NOW, env=ENV).results == {} and canned.posted == []


def test_a_disabled_action_never_runs_whatever_the_approvals_say(engine, tmp_path, canned):
    incident = open_incident(engine)
    enabled = policy(tmp_path / "a", actions=canned_action(canned.url))
    proposed = flow.propose(engine, enabled, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    approve(engine, enabled, proposed.id)
    disabled = policy(tmp_path / "b", actions=canned_action(canned.url, enabled=False))

    assert run_pass(engine, disabled, tmp_path, NOW, env=ENV).results == {"refused": 1}
    assert request(engine, proposed.id).status == "refused" and canned.posted == []
    assert timeline(engine, incident)[-1] == (
        f"workbench|action||action request #{proposed.id} page-shop: refused before running: the gate: "
        "enabled: enabled: false in actions.yaml")


def test_a_replayed_token_is_refused_and_audited(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, cooldown="0s", attempts=5))
    incident = open_incident(engine)
    first = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    used = approve(engine, pol, first.id)
    run_pass(engine, pol, tmp_path, NOW, env=ENV)
    assert len(canned.posted) == 1

    tamper(engine, first.id, status="approved")  # the same request, queued again with its spent token
    second = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="again", now=NOW)
    tamper(engine, second.id, status="approved", approval_id=used.approval_id, approval_token=used.approval_token)
    assert run_pass(engine, pol, tmp_path, NOW + timedelta(minutes=1), env=ENV).results == {"refused": 2}

    assert len(canned.posted) == 1
    for refused in (first, second):
        assert request(engine, refused.id).status == "refused"
        assert any(line.startswith(f"workbench|action||action request #{refused.id} page-shop: refused before "
                                   f"running: approval token refused: replayed: approval {used.approval_id} was "
                                   f"used at 2026-03-01 12:00:00 UTC by request #{first.id}")
                   for line in timeline(engine, incident))


@pytest.mark.parametrize("alteration, reason", [
    ({"parameters": {"team": "payments"}}, "altered: the token was issued for another parameters than this request has"),
    ("signature", "altered: the signature does not match the token"),
    ("other request", "altered: the token was issued for another request than this request has"),
])
def test_an_altered_approval_is_refused_and_audited(engine, tmp_path, canned, alteration, reason):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url))
    incident = open_incident(engine)
    proposed = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    approved = approve(engine, pol, proposed.id)
    if alteration == "signature":
        payload, signature = approved.approval_token.split(".")
        tamper(engine, proposed.id, approval_token=f"{payload[:-2]}xx.{signature}")
    elif alteration == "other request":
        other = flow.propose(engine, pol, open_incident(engine, target="cart"), "page-shop", {}, proposer="bob",
                             reason="r", now=NOW)
        tamper(engine, other.id, status="approved", approval_id=approved.approval_id,
               approval_token=approved.approval_token)
        tamper(engine, proposed.id, status="rejected")
        proposed = other
    else:
        tamper(engine, proposed.id, **alteration)

    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {"refused": 1}
    assert canned.posted == []
    assert request(engine, proposed.id).status == "refused"
    assert timeline(engine, proposed.incident_id)[-1] == (
        f"workbench|action||action request #{proposed.id} page-shop: refused before running: approval token "
        f"refused: {reason}")


def test_an_expired_approval_and_an_expired_request_are_refused(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url), settings="approval_expiry: 10m\n")
    incident = open_incident(engine)
    late = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    approve(engine, pol, late.id, at=NOW + timedelta(minutes=5))
    assert run_pass(engine, pol, tmp_path, NOW + timedelta(minutes=15), env=ENV).results == {"refused": 1}
    assert timeline(engine, incident)[-1].endswith(
        "refused before running: approval token refused: expired at 2026-03-01 12:15:00 UTC")

    undecided = flow.propose(engine, pol, open_incident(engine, target="cart"), "page-shop", {}, proposer="bob",
                             reason="r", now=NOW)
    assert run_pass(engine, pol, tmp_path, NOW + timedelta(minutes=10), env=ENV).expired == 1
    assert request(engine, undecided.id).status == "expired"
    with pytest.raises(RemediationError, match=f"action request #{undecided.id} is expired, not pending"):
        approve(engine, pol, undecided.id, at=NOW + timedelta(minutes=11))
    assert canned.posted == []


def test_a_disruptive_action_needs_approval_whatever_the_file_says(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, risk="disruptive", approval=False))
    proposed = flow.propose(engine, pol, open_incident(engine), "page-shop", {}, proposer="bob", reason="r", now=NOW)
    assert (proposed.status, proposed.needs_approval) == ("pending", True)
    tamper(engine, proposed.id, status="approved")  # queued without any approval
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {"refused": 1}
    assert timeline(engine, proposed.incident_id)[-1].endswith(
        "refused before running: no approval token, and this action needs the operator's approval")
    assert canned.posted == []


def test_a_rejected_request_never_runs_and_deciding_needs_a_reason(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url))
    proposed = flow.propose(engine, pol, open_incident(engine), "page-shop", {}, proposer="bob", reason="r", now=NOW)
    with pytest.raises(RemediationError, match="rejecting an action request needs a reason"):
        flow.reject(engine, proposed.id, actor="alice", reason="  ", now=NOW)
    flow.reject(engine, proposed.id, actor="alice", reason="not during the sale", now=NOW)
    with pytest.raises(RemediationError, match=f"action request #{proposed.id} is rejected, not pending"):
        approve(engine, pol, proposed.id)
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {} and canned.posted == []
    assert timeline(engine, proposed.incident_id)[-1] == (
        f"alice|action||action request #{proposed.id} page-shop: rejected by alice: not during the sale")


def test_cooldown_and_attempts_hold_across_a_restart(ledger_url, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, approval=False, cooldown="1h", attempts=1))
    engine = open_ledger(ledger_url)
    incident = open_incident(engine)
    flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    run_pass(engine, pol, tmp_path, NOW, env=ENV)
    engine.dispose()

    restarted = open_ledger(ledger_url)  # what a new worker process sees: only the ledger
    try:
        with pytest.raises(GateRefused, match=r"cooldown: ran with these parameters at 2026-03-01 12:00:00 UTC; "
                                              r"cooldown 1h lasts until 13:00:00 UTC"):
            flow.propose(restarted, pol, open_incident(restarted, target="cart"), "page-shop", {}, proposer="bob",
                         reason="r", now=NOW + timedelta(minutes=30))
        with pytest.raises(GateRefused, match=r"attempts: 1 of 1 run\(s\) on this incident so far"):
            flow.propose(restarted, pol, incident, "page-shop", {}, proposer="bob", reason="r",
                         now=NOW + timedelta(hours=2))
        payments = flow.propose(restarted, pol, open_incident(restarted, target="cart"), "page-shop",
                                {"team": "payments"}, proposer="bob", reason="another team", now=NOW)
        assert payments.status == "approved", "the cooldown holds per parameters"
    finally:
        restarted.dispose()


def test_a_failed_or_timed_out_run_is_recorded_and_not_retried(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, approval=False, timeout="500ms",
                                                           cooldown="0s"))
    canned.reply({"error": "boom"}, status=500)
    failed = flow.propose(engine, pol, open_incident(engine), "page-shop", {}, proposer="bob", reason="r", now=NOW)
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {"failed": 1}
    assert request(engine, failed.id).output == 'HTTP 500 Internal Server Error\n{"error": "boom"}'

    canned.reply({}, status=200)
    canned.delay = 1.5
    slow = flow.propose(engine, pol, open_incident(engine, target="cart"), "page-shop", {}, proposer="bob",
                        reason="r", now=NOW)
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {"timed_out": 1}
    assert request(engine, slow.id).output.endswith("no answer within 0.5s")

    assert run_pass(engine, pol, tmp_path, NOW + timedelta(hours=1), env=ENV).results == {}
    assert [request(engine, r.id).status for r in (failed, slow)] == ["failed", "timed_out"]
    assert len(canned.requests) == 2


def test_a_run_cut_short_by_a_stop_is_failed_not_run_again(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, approval=False, timeout="5s"))
    proposed = flow.propose(engine, pol, open_incident(engine), "page-shop", {}, proposer="bob", reason="r", now=NOW)
    tamper(engine, proposed.id, status="running", started_at=NOW)  # the worker died while it ran
    assert run_pass(engine, pol, tmp_path, NOW + timedelta(seconds=20), env=ENV).interrupted == 0
    assert run_pass(engine, pol, tmp_path, NOW + timedelta(seconds=40), env=ENV).interrupted == 1
    assert request(engine, proposed.id).status == "failed" and canned.posted == []


def test_secrets_stay_out_of_the_ledger(engine, tmp_path):
    actions = """
actions:
  - id: rotate
    runner: {kind: command, argv: [/bin/echo, "user={{user}}", "key={{key}}"]}
    parameters:
      user: {pattern: "[a-z0-9=_-]+"}
      key: {secret: true}
    risk: containment
    requires_approval: false
    postures: [demo]
    enabled: true
"""
    pol = policy(tmp_path / "policy", actions=actions)
    incident = open_incident(engine)
    with pytest.raises(GateRefused, match=r"parameters: user: looks like a secret"):
        flow.propose(engine, pol, incident, "rotate", {"user": "password=hunter2hunter2", "key": "${ROTATE_KEY}"},
                     proposer="bob", reason="r", now=NOW)
    proposed = flow.propose(engine, pol, incident, "rotate", {"user": "svc", "key": "${ROTATE_KEY}"},
                            proposer="bob", reason="r", now=NOW)
    run_pass(engine, pol, tmp_path, NOW, env={"ROTATE_KEY": "s3cr3t-value-42"})

    ran, refused = request(engine, proposed.id), queries.list_action_requests(engine, statuses=["refused"])[0]
    assert (ran.status, ran.output) == ("succeeded", "exit status 0\nuser=svc key=***\n")
    assert ran.parameters == {"user": "svc", "key": "${ROTATE_KEY}"}
    assert ran.plan == "/bin/echo user=svc 'key=${ROTATE_KEY}'"
    assert refused.parameters == {"user": "password=***", "key": "${ROTATE_KEY}"}
    everything = str([r.model_dump() for r in queries.list_action_requests(engine)]) + str(
        queries.incident_detail(engine, incident).model_dump())
    assert "s3cr3t-value-42" not in everything and "hunter2hunter2" not in everything


def test_requests_waiting_when_an_incident_resolves_are_withdrawn_with_the_reason_on_the_timeline(
        engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url, approval=True))
    incident = open_incident(engine)
    waiting = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    act(engine, incident, "resolve", "fixed by hand", actor=Identity("alice", "operator", "test"))

    assert request(engine, waiting.id).status == "withdrawn"
    assert f"workbench|action||action request #{waiting.id} page-shop: withdrawn (pending when the incident " \
           "resolved)" in timeline(engine, incident)
    assert queries.list_action_requests(engine, statuses=["pending", "approved"]) == []
    with pytest.raises(RemediationError, match=f"action request #{waiting.id} is withdrawn, not pending"):
        approve(engine, pol, waiting.id)
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {} and canned.posted == []


def test_an_approved_request_not_yet_run_is_withdrawn_when_its_incident_resolves(engine, tmp_path, canned):
    pol = policy(tmp_path / "policy", actions=canned_action(canned.url))
    incident = open_incident(engine)
    proposed = flow.propose(engine, pol, incident, "page-shop", {}, proposer="bob", reason="r", now=NOW)
    approve(engine, pol, proposed.id)
    act(engine, incident, "resolve", "fixed by hand", actor=Identity("alice", "operator", "test"))
    assert request(engine, proposed.id).status == "withdrawn"
    assert run_pass(engine, pol, tmp_path, NOW, env=ENV).results == {} and canned.posted == []


def test_an_alert_alone_never_runs_an_action_without_approval(engine, tmp_path, canned):
    """An alert's labels are whatever its sender wrote: a webhook post opens an incident on the
    shop with a category that recommends an action needing no approval, and the action waits
    for the operator; once a probe of the workbench fails on the same incident, it is corroborated."""
    actions = canned_action(canned.url, approval=False) + """
recommend:
  - {category: availability, service: shop, actions: [page-shop]}
"""
    pol = policy(tmp_path / "policy", actions=actions)
    payload = json.loads((SAMPLES / "alertmanager-webhook.json").read_text())
    for alert in payload["alerts"]:
        alert["labels"].update(service="shop", category="availability")
    assert ingest_alertmanager(engine, json.dumps(payload).encode()).status == 200

    outcome = run_pass(engine, pol, tmp_path, NOW, env=ENV)
    (alert_only,) = queries.list_action_requests(engine, statuses=None)
    assert outcome.proposed == 1 and outcome.results == {}
    assert (alert_only.status, alert_only.needs_approval) == ("pending", True)
    assert next(c for c in alert_only.gate if c["check"] == "approval")["detail"] == (
        "required: only outside alerts opened this incident; no probe or rule of the workbench corroborates it")
    assert canned.posted == []

    corroborated = open_incident(engine, target="shop-api")
    run_pass(engine, pol, tmp_path, NOW + timedelta(seconds=1), env=ENV)
    ran = next(r for r in queries.list_action_requests(engine, statuses=None) if r.incident_id == corroborated)
    assert (ran.status, ran.needs_approval, ran.decided_by) == ("succeeded", False, "workbench")
