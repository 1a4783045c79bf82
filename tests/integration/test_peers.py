"""The prometheus and alertmanager probes against the real peers (tests/peers.py): series
scraped from node-exporter, a query error, a rule firing into Alertmanager, and an alert pushed
to Alertmanager, pulled and recorded in the ledger as an incident."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from ledger.queries import list_incidents
from policies.schema import AlertmanagerTarget, PrometheusTarget
from probes import cycle
from probes.alerts import parse_webhook
from probes.context import ProbeClient, ProbeContext
from tests.peers import Peer, Peers
from tests.support import wait_until

pytestmark = pytest.mark.integration


def prometheus_target(peers, query: str, **extra) -> PrometheusTarget:
    return PrometheusTarget.model_validate({"name": "prom", "kind": "prometheus", "service": "monitoring",
                                            "url": peers.prometheus.url, "query": query, "timeout": "5s", **extra})


def alertmanager_target(peers, alertname: str) -> AlertmanagerTarget:
    return AlertmanagerTarget.model_validate({"name": "am", "kind": "alertmanager", "service": "monitoring",
                                              "url": peers.alertmanager.url, "timeout": "5s",
                                              "filter": [f'alertname="{alertname}"']})


def probe(target):
    async def go():
        async with ProbeClient(10) as client:
            return await cycle.probe(target, ProbeContext(client))  # through the registry
    return asyncio.run(go())


def push_alert(peers, **labels) -> None:
    peers.alertmanager.post("/api/v2/alerts", json=[{"labels": labels, "annotations": {"summary": "pushed by a test"}}])


def test_instant_query_reads_node_exporter_series_into_labelled_samples(peers):
    peers.wait_for('node_load1{job="node"}')
    result = probe(prometheus_target(peers, "node_load1", conditions=["[SERIES_COUNT] == 1", "[VALUE] >= 0"]))
    assert result.observation.ok, result.observation.error
    [sample] = result.samples
    assert sample.name == "node_load1"
    assert sample.labels == {"instance": peers.node_exporter.address, "job": "node",
                             "service": "monitoring", "target": "prom", "kind": "prometheus"}
    jobs = 'up{job=~"prometheus|node|blackbox|alertmanager"}'
    peers.wait_for(f"count({jobs}) == 4")
    result = probe(prometheus_target(peers, jobs, conditions=["[SERIES_COUNT] == 4", "[VALUE] == 1"]))
    assert result.observation.ok, result.observation.error
    assert sorted(s.labels["job"] for s in result.samples) == ["alertmanager", "blackbox", "node", "prometheus"]


def test_range_query_gives_one_sample_per_point(peers):
    peers.wait_for('count_over_time(up{job="node"}[1m]) >= 3')
    result = probe(prometheus_target(peers, 'up{job="node"}', mode="range", range="1m", step="1s",
                                     conditions=["[SERIES_COUNT] == 1", "[VALUE] == 1"]))
    assert result.observation.ok, result.observation.error
    times = [s.at for s in result.samples]
    assert len(times) >= 3 and times == sorted(set(times))
    assert {(s.name, s.labels["job"], s.value) for s in result.samples} == {("up", "node", 1.0)}


def test_bad_query_gives_prometheus_reason(peers):
    observation = probe(prometheus_target(peers, "nonexistent_fn(up)")).observation
    assert (observation.ok, observation.status) == (False, 400)
    assert observation.error == ('prometheus: bad_data: invalid parameter "query": 1:1: parse error: '
                                 'unknown function with name "nonexistent_fn"')


def test_a_target_added_by_file_sd_is_scraped_and_the_failing_series_is_named(peers, canned):
    canned.reply(b"workbench_test_ratio 0.93\n", content_type="text/plain; version=0.0.4")
    peers.scrape("workbench", [canned.address])
    try:
        peers.wait_for("workbench_test_ratio")
        result = probe(prometheus_target(peers, "workbench_test_ratio", conditions=["[VALUE] < 0.5"]))
    finally:
        peers.scrape("workbench", [])
    assert result.observation.error == (f'[VALUE] < 0.5 -> got 0.93 workbench_test_ratio{{instance="{canned.address}", '
                                        'job="workbench"}')


def test_a_rule_provided_by_the_test_fires_into_alertmanager_and_is_pulled(peers):
    peers.add_rules("node-up", """
groups:
  - name: workbench-test
    rules:
      - alert: WorkbenchTestNodeUp
        expr: up{job="node"} == 1
        for: 1s
        labels: {severity: critical}
        annotations: {summary: "node-exporter {{ $labels.instance }} is up"}
""")
    target = alertmanager_target(peers, "WorkbenchTestNodeUp")
    result = wait_until(lambda: (r := probe(target)).alerts and r, "the rule's alert in Alertmanager")
    [alert] = result.alerts
    assert alert.labels["instance"] == peers.node_exporter.address and alert.labels["severity"] == "critical"
    assert alert.generator_url.startswith(peers.prometheus.url)


def test_a_pushed_alert_is_pulled_and_recorded_as_an_incident(peers, sqlite_engine):
    name = f"WorkbenchPushed{uuid.uuid4().hex[:8]}"
    push_alert(peers, alertname=name, service="checkout", severity="critical", instance="web-1")
    target = alertmanager_target(peers, name)
    result = wait_until(lambda: (r := probe(target)).alerts and r, "the pushed alert in Alertmanager")
    assert result.observation.values["ALERT_COUNT"] == 1
    assert cycle.record(sqlite_engine, target, result).alerts["new"] == 1
    assert cycle.record(sqlite_engine, target, probe(target)).alerts["duplicate"] == 1  # still firing
    [incident] = list_incidents(sqlite_engine)
    assert (incident.service, incident.severity, incident.state) == ("checkout", "critical", "observed")
    assert incident.title.startswith(name)


def test_alertmanager_delivers_to_the_webhook_a_test_sets(peers, canned):
    peers.set_webhook(f"http://{canned.address}/alertmanager")
    name = f"WorkbenchWebhook{uuid.uuid4().hex[:8]}"
    push_alert(peers, alertname=name, severity="warning")

    def delivered():
        events = [e for body in list(canned.posted) for e in parse_webhook(body)]
        return [e for e in events if e.labels["alertname"] == name]

    [event] = wait_until(delivered, "the webhook delivery")
    assert (event.status, event.source) == ("firing", "alertmanager-webhook")
    assert httpx.get(f"{peers.alertmanager.url}/api/v2/status").json()["config"]["original"].count(canned.address) == 1


def test_a_missing_binary_names_the_installer(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"not on PATH: prometheus-node-exporter, .*tests/run.sh installs"):
        Peers(tmp_path).start()


def test_a_peer_that_dies_is_reported_with_its_log(tmp_path):
    peer = Peer("prometheus", "prometheus", "/-/ready", tmp_path)
    peer.start(f"--config.file={tmp_path / 'missing.yml'}", f"--web.listen-address={peer.address}")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)prometheus exited with code 2\n--- last 20 lines .*"
                                                    r"missing\.yml: no such file"):
        peer.wait_ready()
