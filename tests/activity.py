"""A real incident's activity, written into a ledger and a samples store through the workbench's
own paths on a clock the test sets: probe runs of the demo service (healthy, failing, healthy
again) recorded by the probe cycle with their samples, rolled up; an Alertmanager alert of
another service; a silence; the notification planned and delivered to a real webhook receiver;
the acknowledgement; the hypotheses drafted and refined by a recorded model server; an action
proposed, approved and run by the worker's remediation pass against the demo service, and
verified. Forensics, the review notebook and the post-mortem are checked against it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from hypotheses.refine import request, run_refinement
from ledger import queries
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.repo import alerts, incidents, silences
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from policies.loader import Policy, load_policy
from probes.alerts import parse_webhook
from probes.context import observe
from probes.cycle import probe_samples, record
from remediation import flow
from tests.hypotheses.conftest import VALID, provider
from tests.hypotheses.recorded import RecordedOllama
from tests.notifications.support import run_pass as notify_pass
from tests.remediation.support import KEY, fault_off
from tests.remediation.support import run_pass as remediation_pass
from tests.support import ROOT

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the fault starts
END = T0 + timedelta(hours=2)  # when the samples are rolled up: the 12:00 hour is in the hourly rollups
STEP = timedelta(seconds=30)
SECRET = "tok_live_9a8b7c6d5e4f3a2b1c0d"  # in the alert's annotations: masked in the ledger


def shop_target(name: str, url: str, conditions: list[str]) -> dict:
    """An HTTP target of shop probed every 30 s: failing twice opens its finding, passing twice resolves it."""
    return {"name": name, "kind": "http", "service": "shop", "url": url, "interval": "30s", "failure_threshold": 2,
            "success_threshold": 2, "conditions": conditions}


CHANNELS = """
channels:
  - {{name: hook, kind: webhook, url: "{url}/hook"}}
routes:
  - channels: [hook]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
"""


@dataclass(frozen=True)
class Activity:
    incident_id: int  # shop-web's incident
    alert_incident_id: int  # the payments alert's incident, at the same time
    data_dir: Path
    policy_dir: Path
    policy: Policy
    store: SampleStore


def write_policy(directory: Path, demo_url: str, demo_port: int, receiver_url: str, ollama_url: str) -> Policy:
    directory.mkdir(parents=True, exist_ok=True)
    targets = [shop_target("shop-web", demo_url, ["[STATUS] == 200", "[RESPONSE_TIME] < 800"]),
               shop_target("shop-api", f"{demo_url}api", ["[STATUS] == 200"])]
    (directory / "targets.yaml").write_text(yaml.safe_dump({"targets": targets}))
    (directory / "actions.yaml").write_text(fault_off(demo_port))
    (directory / "channels.yaml").write_text(CHANNELS.format(url=receiver_url))
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", directory)
    (directory / "routing.yaml").write_text(yaml.safe_dump({"providers": {"local": provider(ollama_url)},
                                                            "routes": {"hypothesis": {"chain": ["local"]}}}))
    return load_policy(directory)


def probe_run(engine, store: SampleStore, target, at: datetime, status: int, ms: float) -> None:
    """One run of ``target`` answering ``status`` in ``ms``, recorded as the probe cycle records it."""
    result = observe(target, at, ms, {"STATUS": status, "RESPONSE_TIME": ms}, status=status)
    store.append(probe_samples(target, result))
    record(engine, target, result, now=lambda: at)


def alert_body(at: datetime) -> bytes:
    """An Alertmanager webhook delivery: payments' error rate, firing from ``at``."""
    alert = {"status": "firing", "labels": {"alertname": "PaymentsErrors", "service": "payments",
                                            "severity": "warning"},
             "annotations": {"summary": f"payments 5xx above 2% (callback token={SECRET})"},
             "startsAt": at.isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus:9090/graph", "fingerprint": "4f1c0a2b3d4e5f60"}
    return json.dumps({"version": "4", "status": "firing", "receiver": "workbench", "groupKey": "{}:{}",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
                       "alerts": [alert]}).encode()


def fill(engine, data_dir: Path, demo_target, receiver) -> Activity:
    """The activity described at the top, into ``engine`` and ``data_dir``/samples."""
    ollama = RecordedOllama([VALID])
    try:
        policy = write_policy(data_dir.parent / "policy", demo_target.url, demo_target.port, receiver.url, ollama.url)
        web, api = policy.targets
        store = SampleStore(data_dir / "samples", now=lambda: END)
        demo_target.fault("none")
        for i in range(-20, 0):  # ten healthy minutes
            probe_run(engine, store, web, T0 + i * STEP, 200, 12.0)
        demo_target.fault("errors")
        probe_run(engine, store, web, T0, 503, 40.0)
        probe_run(engine, store, web, T0 + STEP, 503, 45.0)  # the incident opens
        incident_id = _incident_of(engine, "shop/shop-web")
        with write_session(engine) as session:
            for event in parse_webhook(alert_body(T0 + STEP)):
                alerts.record_alert(session, event, T0 + STEP)
        notify_pass(engine, policy, T0 + 2 * STEP)  # group_wait is over: the firing notification goes out
        probe_run(engine, store, web, T0 + 2 * STEP, 503, 41.0)
        with write_session(engine) as session:
            incidents.acknowledge(session, incident_id, "alice", T0 + 3 * STEP, via="CLI")
            silences.add_silence(session, matchers=[{"label": "service", "op": "=", "value": "shop"}],
                                 starts_at=T0 + 3 * STEP, ends_at=T0 + timedelta(minutes=30), author="alice",
                                 comment="shop is being worked on", now=T0 + 3 * STEP)
        probe_run(engine, store, api, T0 + 3 * STEP, 503, 30.0)
        probe_run(engine, store, api, T0 + 4 * STEP, 503, 30.0)  # its finding is silenced
        probe_run(engine, store, web, T0 + 4 * STEP, 503, 44.0)
        run = request(engine, incident_id, "alice", T0 + 5 * STEP)
        run_refinement(engine, store, policy, run, [], now=lambda: T0 + 5 * STEP)
        proposed = flow.propose(engine, policy, incident_id, "fault-off", {}, proposer="alice",
                                reason="the demo answers 503", now=T0 + 6 * STEP)
        flow.approve(engine, policy, KEY.encode(), proposed.id, actor="bob", reason="safe to switch off",
                     now=T0 + 7 * STEP)
        remediation_pass(engine, policy, data_dir, T0 + 8 * STEP)  # fault off, verified: contained
        for i in (9, 10):  # healthy twice: resolved
            probe_run(engine, store, web, T0 + i * STEP, 200, 13.0)
        for i in range(11, 40):
            probe_run(engine, store, web, T0 + i * STEP, 200, 12.0)
        for i in (5, 6, 7):
            probe_run(engine, store, api, T0 + i * STEP, 200, 10.0)
        store.flush()
        Rollups(store).maintain(timedelta(seconds=20), {"1m": timedelta(days=35), "1h": timedelta(days=400)})
    finally:
        ollama.close()
    return Activity(incident_id, _incident_of(engine, "payments/alert:PaymentsErrors"), data_dir,
                    data_dir.parent / "policy", policy, store)


def fill_sqlite(data_dir: Path, demo_target, receiver) -> Activity:
    """The activity in a SQLite ledger in ``data_dir``, as the workbench keeps one there."""
    engine = open_ledger(sqlite_url(data_dir))
    try:
        return fill(engine, data_dir, demo_target, receiver)
    finally:
        engine.dispose()


def _incident_of(engine, key: str) -> int:
    (found,) = [i.id for i in queries.list_incidents(engine) if i.correlation_key == key]
    return found
