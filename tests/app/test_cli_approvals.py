"""`workbench approvals` on a real ledger (SQLite and PostgreSQL): propose, list (the stable JSON
shape), approve (a single-use token signed with the key kept in the data directory) and
reject; every error as one line and exit status 1."""

from __future__ import annotations

import json
import stat
from datetime import timedelta

import pytest

import ledger.db
from app.access import os_user as operator_name
from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger
from remediation.tokens import KEY_FILE, signing_key, verify
from tests.remediation.support import NOW, open_incident, write_policy

ACTIONS = """
actions:
  - id: scale-web
    runner: {kind: command, argv: [/bin/echo, scale, "{{replicas}}"]}
    parameters:
      replicas: {type: integer, minimum: 1, maximum: 10, default: 2}
    risk: disruptive
    postures: [demo]
    enabled: true
  - id: drain-node
    runner: {kind: notify, message: drain}
    risk: containment
    postures: [production]
    enabled: true
"""
JSON_KEYS = ["id", "incident_id", "incident_title", "incident_state", "action", "parameters", "risk", "runner", "plan",
             "needs_approval", "status", "reason", "proposed_by", "proposed_at", "expires_at", "gate", "decided_by",
             "decided_at", "decision_reason", "approval_id", "approval_token", "approval_expires_at", "started_at",
             "finished_at", "output", "verification"]


@pytest.fixture
def incident(ledger_url) -> int:
    engine = open_ledger(ledger_url)
    try:
        return open_incident(engine)
    finally:
        engine.dispose()


@pytest.fixture
def cli(ledger_url, tmp_path, capsys, monkeypatch):
    """run(*args) -> (exit status, stdout, stderr) of `workbench --policy P --data D ARGS`, at NOW."""
    for name in (ENV_POLICY, ENV_DATA, "WORKBENCH_APPROVAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_DB, ledger_url)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    policy = write_policy(tmp_path / "policy", actions=ACTIONS)

    def run(*args: str):
        code = main(["--policy", str(policy), "--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def listed(cli, *flags: str) -> list[dict]:
    code, out, _ = cli("approvals", "list", "--format", "json", *flags)
    assert code == 0
    return json.loads(out)


def test_propose_list_and_approve(cli, incident, tmp_path):
    assert cli("approvals", "list") == (0, f"{'ID':>5}  {'STATUS':<10} {'RISK':<12} {'ACTION':<20} {'INCIDENT':>8}  "
                                           f"{'PROPOSED (UTC)':<19}  PLAN\n(no action requests)\n", "")
    assert cli("approvals", "propose", str(incident), "scale-web", "--param", "replicas=4", "--reason", "load") == (
        0, f"action request #1 (scale-web on incident {incident}) waiting for approval: workbench approvals approve 1 "
           "--reason TEXT\n", "")
    [pending] = listed(cli)
    assert list(pending) == JSON_KEYS
    assert {k: pending[k] for k in ("status", "action", "parameters", "risk", "plan", "proposed_by", "reason",
                                    "proposed_at", "expires_at", "needs_approval")} == {
        "status": "pending", "action": "scale-web", "parameters": {"replicas": 4}, "risk": "disruptive",
        "plan": "/bin/echo scale 4", "proposed_by": operator_name(), "reason": "load",
        "proposed_at": "2026-03-01T12:00:00Z", "expires_at": "2026-03-01T12:15:00Z", "needs_approval": True}
    assert [c["check"] for c in pending["gate"] if c["ok"]] == ["catalog", "enabled", "posture", "parameters",
                                                                "cooldown", "attempts", "incident", "approval"]

    code, out, err = cli("approvals", "approve", "1", "--reason", "evidence checked")
    approved = listed(cli, "--status", "approved")[0]
    assert (code, err) == (0, "")
    assert out == (f"action request #1 approved by {operator_name()}: approval {approved['approval_id']}, good for one "
                   f"run until 2026-03-01 12:15:00 UTC; the worker runs it\ntoken: {approved['approval_token']}\n")
    assert (approved["decided_by"], approved["decision_reason"]) == (operator_name(), "evidence checked")
    assert listed(cli) == []

    key_file = tmp_path / "var" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    expected = {"id": approved["approval_id"], "request": 1, "incident": incident, "action": "scale-web",
                "parameters": {"replicas": 4}}
    claims = verify(signing_key("WORKBENCH_APPROVAL_KEY", tmp_path / "var", {}), approved["approval_token"], expected,
                    NOW + timedelta(minutes=14))
    assert claims.approved_by == operator_name()


def test_reject_then_deciding_again_is_one_line_and_exit_1(cli, incident):
    cli("approvals", "propose", str(incident), "scale-web")
    assert cli("approvals", "reject", "1", "--reason", "not now") == (
        0, f"action request #1 rejected by {operator_name()}\n", "")
    assert cli("approvals", "approve", "1", "--reason", "changed my mind") == (
        1, "", "workbench: action request #1 is rejected, not pending\n")
    assert [r["status"] for r in listed(cli, "--all")] == ["rejected"]


def test_errors_are_one_line(cli, incident):
    assert cli("approvals", "propose", str(incident), "drain-node") == (
        1, "", "workbench: action request #1 refused by the gate: posture: posture demo; the action is allowed in "
               "production\n")
    assert cli("approvals", "propose", str(incident), "scale-web", "--param", "replicas=99")[2] == (
        "workbench: action request #2 refused by the gate: parameters: replicas: 99 is above the maximum 10\n")
    assert cli("approvals", "propose", str(incident), "scale-web", "--param", "replicas") == (
        1, "", "workbench: --param wants NAME=VALUE, got 'replicas'\n")
    assert cli("approvals", "approve", "99", "--reason", "x") == (1, "", "workbench: no action request with id 99\n")
    assert cli("approvals", "reject", "1", "--reason", " ") == (
        1, "", "workbench: rejecting an action request needs a reason\n")
    assert [r["status"] for r in listed(cli, "--status", "refused")] == ["refused", "refused"]
    with pytest.raises(SystemExit) as usage:
        cli("approvals", "approve", "1")
    assert usage.value.code == 2
