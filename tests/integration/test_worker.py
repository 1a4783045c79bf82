"""A real worker process against a real local HTTP target the test flips."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
from sqlmodel import func, select

from ledger.db import open_ledger, read_session, sqlite_url
from ledger.queries import incident_detail, list_incidents
from ledger.tables import Incident, Observation
from tests.support import ROOT, SAMPLES, wait_until

pytestmark = pytest.mark.integration

def test_failing_target_opens_an_incident_that_recovers_and_resolves(worker, demo_target, tmp_path):
    w = worker().start()
    engine = open_ledger(sqlite_url(w.data))
    demo_target.fault("errors")
    incident = wait_until(lambda: list_incidents(engine), "an incident")[0]
    assert (incident.state, incident.severity, incident.service) == ("observed", "critical", "shop")
    detail = incident_detail(engine, incident.id)
    assert any(c["text"] == "[STATUS] == 200 -> got 503" for e in detail.evidence for c in e.checks)

    demo_target.fault("none")
    resolved = wait_until(lambda: [i for i in list_incidents(engine) if i.state == "resolved"], "resolution")[0]
    states = [t.to_state for t in incident_detail(engine, resolved.id).timeline if t.to_state]
    assert states == ["observed", "recovering", "resolved"]

    metrics = w.metrics()
    assert 'workbench_probe_runs_total{kind="http",target="shop-web"}' in metrics
    assert 'workbench_probe_failures_total{target="shop-web"}' in metrics
    assert 'workbench_open_incidents{state="observed"} 0' in metrics
    assert "workbench_schedule_lag_seconds_count" in metrics
    assert "workbench_ledger_write_seconds_bucket" in metrics
    w.stop()
    assert w.proc.returncode == 0
    assert "worker stopped" in (tmp_path / "worker.log").read_text()


def test_kill_9_loses_no_committed_incident_and_creates_no_duplicate(worker, demo_target):
    demo_target.fault("errors")
    w = worker(interval="250ms").start()
    engine = open_ledger(sqlite_url(w.data))
    first = wait_until(lambda: list_incidents(engine), "an incident")[0]

    def counts():
        with read_session(engine) as s:
            return (s.exec(select(func.count()).select_from(Observation)).one(),
                    s.exec(select(func.count()).select_from(Incident)).one())

    committed = 0
    for _ in range(3):  # kill during probe cycles, restart, and again
        wait_until(lambda: counts()[0] > committed + 2, "more probe results")
        w.stop(signal.SIGKILL)
        observations, incidents = counts()
        assert observations > committed and incidents == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        committed = observations
        w.start()
    wait_until(lambda: counts()[0] > committed, "probe results after the last restart")
    assert [i.id for i in list_incidents(engine)] == [first.id]
    assert incident_detail(engine, first.id).finding_count == 1


def test_invalid_policy_keeps_the_last_good_one_running(worker, demo_target):
    w = worker().start()
    wait_until(lambda: 'workbench_probe_runs_total{kind="http",target="shop-web"}' in w.metrics(), "a first probe run")
    (w.policy / "targets.yaml").write_text("targets:\n  - name: shop-web\n    kind: http\n    url: 12\n")
    health = wait_until(lambda: (h := w.health()) and h["status"] == "degraded" and h, "degraded health")
    assert any("targets.yaml" in e and "targets[0].url" in e for e in health["policy"]["errors"])
    assert "workbench_policy_valid 0" in w.metrics()

    runs = 'workbench_probe_runs_total{kind="http",target="shop-web"}'
    seen = w.metric(runs)
    wait_until(lambda: w.metric(runs) > seen, "probes to go on under the last good policy")
    assert w.proc.poll() is None


def test_hostile_policy_edits_keep_the_last_good_policy_and_healthz_says_why(worker):
    w = worker()
    (w.policy / "settings.yaml").write_text("policy_reload_interval: 200ms\n")
    w.start()
    runs = 'workbench_probe_runs_total{kind="http",target="shop-web"}'
    wait_until(lambda: w.metric(runs) > 0, "a first probe run")
    good = w.health()
    assert (good["status"], good["reason"], good["policy"]["errors"]) == ("ok", None, [])
    in_force, targets, rules = good["policy"]["digest"], w.policy / "targets.yaml", w.policy / "rules.yaml"
    text = targets.read_text()

    def rejected(problem: str) -> None:
        health = wait_until(lambda: (h := w.health()) and any(problem in e for e in h["policy"]["errors"]) and h,
                            f"/healthz to say {problem!r}")
        assert health["status"] == "degraded" and problem in health["reason"]
        assert health["policy"]["digest"] == in_force and health["policy"]["on_disk"]["accepted"] is False
        assert w.metric("workbench_policy_valid") == 0
        seen = w.metric(runs)
        wait_until(lambda: w.metric(runs) > seen, "probes to go on under the last good policy")

    targets.unlink()
    rejected("targets.yaml: is missing, but the policy in force has 1 target from it: refused as suspicious")
    targets.symlink_to(targets)
    rejected("targets.yaml: cannot be read: it is a symbolic link that loops")
    targets.unlink()
    targets.write_text(text.replace("interval: 300ms", "interval: 99999999999d"))
    rejected("targets[0].interval: duration '99999999999d' is longer than 365d, the most this key allows")
    bloated = targets.with_name("targets.yaml.new")  # renamed into place whole, as an editor saves: a reload
    bloated.write_text(text + "#" * (50 * 1024 * 1024))  # must not read a part of it (a valid, smaller file)
    bloated.replace(targets)
    rejected(f"targets.yaml: too large: {targets.stat().st_size:,} bytes, over the limit of 32 MiB")
    targets.write_text(text)
    rules.write_text("rules:\n  - {name: shop-errors, kind: errors, service: shop, above: 0.5, summary: '{window:.1f}'}\n")
    rejected("rules[0].summary: {window:.1f} cannot be rendered: Unknown format code 'f' for object of type 'str'")

    rules.unlink()
    back = wait_until(lambda: (h := w.health()) and h["status"] == "ok" and h, "the good files in force again")
    assert back["policy"]["errors"] == [] and back["policy"]["digest"] == in_force
    assert w.metric("workbench_policy_valid") == 1
    targets.write_text("allow_empty: true  # probing stops on purpose\ntargets: []\n")
    empty = wait_until(lambda: (h := w.health()) and h["targets"] == 0 and h, "the confirmed empty policy in force")
    assert empty["status"] == "ok" and empty["policy"]["digest"] != in_force
    assert w.proc.poll() is None


def test_busy_port_is_a_one_line_error(worker):
    w = worker().start()
    clash = subprocess.run(
        [sys.executable, "-m", "app.cli", "--policy", str(w.policy), "--data", str(w.data), "worker",
         "--port", str(w.port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert clash.returncode == 1
    assert clash.stderr.strip().splitlines()[-1].startswith("workbench: worker cannot serve on its port:")


WEBHOOK = (SAMPLES / "alertmanager-webhook.json").read_bytes()


def test_webhook_refuses_bad_payloads_and_keeps_every_accepted_one_across_kill_9(worker):
    w = worker(env={"WORKBENCH_INGEST_TOKEN": "t0ken-for-tests"}).start()
    url = f"http://127.0.0.1:{w.port}/ingest/alertmanager"
    auth = {"Authorization": "Bearer t0ken-for-tests"}

    def post(body: bytes, headers=auth):
        return httpx.post(url, content=body, headers=headers, timeout=30)

    refused = [
        (post(WEBHOOK, headers={}), 401, "missing or wrong bearer token"),
        (post(b"x" * 10_000_000), 413, "body of 10000000 bytes exceeds the limit of 1048576"),
        (post(b"\xff\xfe"), 400, "body is not valid UTF-8 (byte 0)"),
        (post(WEBHOOK.replace(b'"version": "4"', b'"version": "5"')), 400,
         "unsupported webhook payload version '5'; expected '4'"),
    ]
    for response, status, reason in refused:
        assert (response.status_code, response.json()) == (status, {"error": reason})
    assert w.metric('workbench_ingest_payloads_total{result="rejected"}') == 4

    accepted = post(WEBHOOK)
    assert (accepted.status_code, accepted.json()) == (200, {"status": "accepted", "new": 1})
    w.stop(signal.SIGKILL)  # right after answering
    engine = open_ledger(sqlite_url(w.data))
    assert [i.correlation_key for i in list_incidents(engine)] == ["blackbox-http/alert:BlackboxProbeFailed"]
    w.start()
    assert post(WEBHOOK).json() == {"status": "accepted", "duplicate": 1}
    assert len(list_incidents(engine)) == 1
