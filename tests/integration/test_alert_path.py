"""The real alert path, end to end: Prometheus scrapes a real worker's /metrics, an alerting rule
over a workbench metric fires into Alertmanager, and Alertmanager delivers to the worker's
webhook (with a bearer token), which records the alert as an incident in the worker's ledger.
When the condition clears, Alertmanager's resolved delivery resolves the incident."""

from __future__ import annotations

import pytest

from ledger.db import open_ledger, sqlite_url
from ledger.queries import incident_detail, list_incidents
from tests.support import wait_until

pytestmark = pytest.mark.integration

JOB, ALERT, TOKEN = "workbench-worker", "WorkbenchProbeFailing", "alert-path-t0ken"
KEY = f"{JOB}/alert:{ALERT}"  # no service label on the series, so the job names the service
# The failure counter never goes down, so the rule asks whether it grew over the last few
# scrapes (every second): true while the demo target fails, false a few seconds after it heals.
RULES = """
groups:
  - name: workbench-alert-path
    rules:
      - alert: WorkbenchProbeFailing
        expr: increase(workbench_probe_failures_total{job="workbench-worker", target="shop-web"}[5s]) > 0
        for: 1s
        labels: {severity: critical}
        annotations: {summary: "probes of {{ $labels.target }} are failing"}
"""
# Alert delivery waits on Prometheus' target discovery (~5 s), the rule's `for`, a reload's
# Alertmanager discovery pause (~5 s) and Alertmanager's group_wait: allow a minute at most.
DELIVERY_ATTEMPTS = 600


@pytest.fixture
def alert_path(peers):
    """The shared peers, with this test's scrape job and rule taken away after it."""
    yield peers
    peers.scrape(JOB, [])
    peers.add_rules("alert-path", "groups: []\n")


def test_a_rule_over_worker_metrics_fires_through_alertmanager_into_the_worker_ledger(alert_path, worker,
                                                                                        demo_target):
    peers = alert_path
    w = worker(env={"WORKBENCH_INGEST_TOKEN": TOKEN}).start()
    engine = open_ledger(sqlite_url(w.data))
    peers.set_webhook(f"{w.url}/ingest/alertmanager", bearer_token=TOKEN)
    peers.scrape(JOB, [f"127.0.0.1:{w.port}"])
    peers.add_rules("alert-path", RULES)
    peers.wait_for(f'workbench_probe_runs_total{{job="{JOB}", target="shop-web"}}')

    def alert_incidents():
        return [i for i in list_incidents(engine) if i.correlation_key == KEY]

    demo_target.fault("errors")
    [incident] = wait_until(alert_incidents, f"an incident {KEY} delivered by Alertmanager",
                            attempts=DELIVERY_ATTEMPTS)
    assert (incident.state, incident.severity, incident.service) == ("observed", "critical", JOB)
    alerts = [e for e in incident_detail(engine, incident.id).evidence if e.kind == "alert"]
    assert alerts and alerts[0].summary == f"alert {ALERT} firing (alertmanager-webhook)"
    labels = alerts[0].data["labels"]
    assert (labels["job"], labels["instance"], labels["target"]) == (JOB, f"127.0.0.1:{w.port}", "shop-web")
    assert alerts[0].data["generator_url"].startswith(peers.prometheus.url)
    assert w.metric('workbench_ingest_payloads_total{result="accepted"}') >= 1
    assert w.metric('workbench_ingest_payloads_total{result="rejected"}') == 0  # every delivery had the token

    demo_target.fault("none")
    resolved = wait_until(lambda: (d := incident_detail(engine, incident.id)).state == "resolved" and d,
                          f"the resolved delivery for {KEY}", attempts=DELIVERY_ATTEMPTS)
    assert resolved.resolved_at is not None
    assert [e.summary for e in resolved.evidence if e.kind == "alert"][-1] == \
        f"alert {ALERT} resolved (alertmanager-webhook)"
    assert [i.id for i in alert_incidents()] == [incident.id]
