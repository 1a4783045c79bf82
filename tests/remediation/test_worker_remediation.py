"""Remediation in real worker processes: a recommended action proposed for the incident the
worker opened, approved from the command line, run by the worker against the demo service and
verified (the incident is contained); the cooldown holds across a worker restart."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.integration.conftest import WorkerProcess
from tests.remediation.support import write_policy
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.integration

TARGETS = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    interval: 300ms
    timeout: 250ms
    failure_threshold: 2
    success_threshold: 50
    conditions: ["[STATUS] == 200"]
"""
ACTIONS = """
actions:
  - id: fault-off
    runner: {{kind: webhook, method: POST, url: "http://127.0.0.1:{port}/fault?mode=none"}}
    risk: containment
    cooldown: 1h
    postures: [demo]
    enabled: true
recommend:
  - {{category: availability, service: shop, actions: [fault-off]}}
"""
SETTINGS = "remediation_interval: 300ms\n"


def cli(policy, data, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "--policy", str(policy), "--data", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(data)})


def fault(demo_target) -> str:
    return httpx.get(f"{demo_target.url}fault", timeout=2).json()["mode"]


def test_the_worker_runs_an_approved_action_verifies_it_and_keeps_its_cooldown(tmp_path, demo_target):
    policy = write_policy(tmp_path / "policy", targets=TARGETS.format(url=demo_target.url),
                          actions=ACTIONS.format(port=demo_target.port), settings=SETTINGS)
    data = tmp_path / "var"
    demo_target.fault("errors")
    worker = WorkerProcess(policy, data, tmp_path / "worker.log").start()
    ledger = open_ledger(sqlite_url(data))
    try:
        pending = wait_until(lambda: queries.list_action_requests(ledger, statuses=["pending"]),
                             "the worker to propose the recommended action")[0]
        assert (pending.action, pending.proposed_by, pending.reason) == (
            "fault-off", "workbench", "recommended for availability incidents of shop")
        assert fault(demo_target) == "errors", "nothing runs before the operator approves"

        approved = cli(policy, data, "approvals", "approve", str(pending.id), "--reason", "demo is down")
        assert approved.returncode == 0, approved.stderr
        done = wait_until(lambda: (r := queries.action_request(ledger, pending.id)).verification and r,
                          "the worker to run and verify the action")
        assert (done.status, done.verification, fault(demo_target)) == ("succeeded", "passed", "none")
        contained = [t for t in queries.incident_detail(ledger, pending.incident_id).timeline if t.to_state == "contained"]
        assert [t.message for t in contained] == [
            f"action request #{pending.id} fault-off: verified: shop-web passed again"]
        assert worker.metric('workbench_action_runs_total{result="succeeded"}') == 1
        assert worker.metric('workbench_action_verifications_total{result="passed"}') == 1

        worker.stop()
        cli(policy, data, "incidents", "resolve", str(pending.incident_id), "--reason", "fixed")
        demo_target.fault("errors")
        restarted = WorkerProcess(policy, data, tmp_path / "worker.log").start()
        again = wait_until(lambda: [r for r in queries.list_action_requests(ledger, statuses=None)
                                    if r.incident_id != pending.incident_id],
                           "the restarted worker to propose for the new incident")[0]
        assert again.status == "refused"
        assert next(c["detail"] for c in again.gate if not c["ok"]).startswith("ran with these parameters at ")
        listed = json.loads(cli(policy, data, "approvals", "list", "--all", "--format", "json").stdout)
        assert [r["status"] for r in listed] == ["refused", "succeeded"]
        assert fault(demo_target) == "errors", "the cooldown held across the restart"
        restarted.stop()
    finally:
        ledger.dispose()
