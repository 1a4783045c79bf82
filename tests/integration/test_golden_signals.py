"""Golden-signal rules end to end: a real Prometheus scrapes node-exporter and a synthetic shop
service whose latency and errors the test controls; a real worker's prometheus probes read the
series through Prometheus, its rules open and resolve incidents; a parent outage suppresses a
child; a silence suppresses and then expires."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from ledger import queries
from ledger.db import open_ledger, read_session, sqlite_url, utcnow, write_session
from ledger.repo import silences
from ledger.tables import Finding, RuleState
from tests.integration.conftest import WorkerProcess
from tests.support import LocalServer, QuietHandler, wait_until

pytestmark = pytest.mark.integration

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5)
PER_SCRAPE = 20  # requests the shop serves between two scrapes


class Shop:
    """A service exposing Prometheus metrics: each scrape counts PER_SCRAPE more requests at the
    current latency, a share of them failed."""

    def __init__(self):
        self.latency, self.error_ratio = 0.05, 0.0
        self.requests = self.failed = 0
        self.buckets = dict.fromkeys(BUCKETS, 0)
        self.latency_sum = 0.0
        self.lock = threading.Lock()
        shop = self

        class Handler(QuietHandler):
            def do_GET(self):
                self.reply(200, shop.scrape().encode(), "text/plain; version=0.0.4")

        self.local = LocalServer(Handler)
        self.address = self.local.address

    def scrape(self) -> str:
        with self.lock:
            self.requests += PER_SCRAPE
            self.failed += round(PER_SCRAPE * self.error_ratio)
            self.latency_sum += PER_SCRAPE * self.latency
            for le in BUCKETS:
                if self.latency <= le:
                    self.buckets[le] += PER_SCRAPE
            lines = ["# TYPE shop_requests_total counter", f"shop_requests_total {self.requests}",
                     "# TYPE shop_requests_failed_total counter", f"shop_requests_failed_total {self.failed}",
                     "# TYPE shop_request_duration_seconds histogram"]
            lines += [f'shop_request_duration_seconds_bucket{{le="{le}"}} {n}' for le, n in self.buckets.items()]
            lines += [f'shop_request_duration_seconds_bucket{{le="+Inf"}} {self.requests}',
                      f"shop_request_duration_seconds_sum {self.latency_sum}",
                      f"shop_request_duration_seconds_count {self.requests}"]
            return "\n".join(lines) + "\n"

    def close(self):
        self.local.close()


class Listener:
    """A TCP port that is up (listening) or down (closed), for the parent host."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def down(self):
        self.sock.close()

    def up(self):
        self.sock = socket.create_server(("127.0.0.1", self.port))


TARGETS = """
targets:
  - {{name: shop-latency, kind: prometheus, service: shop, interval: 1s, url: "{prom}", metric: shop_latency_seconds,
     query: 'histogram_quantile(0.9, sum by (le) (rate(shop_request_duration_seconds_bucket[5s])))'}}
  - {{name: shop-rps, kind: prometheus, service: shop, interval: 1s, url: "{prom}", metric: shop_requests_per_second,
     query: 'sum(rate(shop_requests_total[5s]))'}}
  - {{name: shop-eps, kind: prometheus, service: shop, interval: 1s, url: "{prom}", metric: shop_errors_per_second,
     query: 'sum(rate(shop_requests_failed_total[5s]))'}}
  - {{name: node-cpu, kind: prometheus, service: host, interval: 1s, url: "{prom}", metric: node_cpu_busy_ratio,
     query: '1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[5s]))'}}
  - {{name: db-host, kind: tcp, service: db, interval: 500ms, host: 127.0.0.1, port: {db_port},
     failure_threshold: 1, success_threshold: 1}}
  - {{name: shop-web, kind: http, service: shop, interval: 500ms, url: "{web}", parent: db-host,
     failure_threshold: 2, success_threshold: 2, conditions: ["[STATUS] == 200"]}}
"""
RULES = """
services:
  shop:
    latency: shop_latency_seconds
    traffic: shop_requests_per_second
    errors: shop_errors_per_second
rules:
  - {name: shop-latency, kind: latency, service: shop, percentile: 50, above: 0.5, window: 6s, severity: critical}
  - {name: shop-errors, kind: errors, service: shop, errors: shop_errors_per_second,
     requests: shop_requests_per_second, above: 0.2, window: 6s}
  - {name: host-cpu, kind: saturation, series: node_cpu_busy_ratio, above: 1.0, window: 30s}
noise: {evaluation_interval: 1s}
"""


@pytest.fixture
def stack(peers, tmp_path, demo_target):
    shop, db = Shop(), Listener()
    peers.scrape("shop", [shop.address])
    peers.wait_for('shop_requests_total{job="shop"}')
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "targets.yaml").write_text(TARGETS.format(prom=peers.prometheus.url, db_port=db.port,
                                                        web=demo_target.url))
    (policy / "rules.yaml").write_text(RULES)
    worker = WorkerProcess(policy, tmp_path / "var", tmp_path / "worker.log").start()
    engine = open_ledger(sqlite_url(tmp_path / "var"))
    yield shop, db, demo_target, engine
    worker.stop()
    engine.dispose()
    peers.scrape("shop", [])
    shop.close()


def open_incident(engine, key: str):
    return next((i for i in queries.list_incidents(engine) if i.correlation_key == key and i.resolved_at is None),
                None)


def resolved(engine, key: str):
    return next((i for i in queries.list_incidents(engine) if i.correlation_key == key and i.resolved_at), None)


def test_latency_and_error_ratio_rules_open_and_resolve_incidents(stack):
    shop, _, _, engine = stack
    shop.latency = 0.8
    incident = wait_until(lambda: open_incident(engine, "shop/shop-latency"), "the latency incident")
    assert incident.severity == "critical"
    [evidence] = [e for e in queries.incident_detail(engine, incident.id).evidence if e.kind == "rule"]
    assert evidence.data["query"] == "shop_latency_seconds" and evidence.data["value"] > 0.5
    shop.latency = 0.05
    wait_until(lambda: resolved(engine, "shop/shop-latency"), "the latency incident to resolve")

    shop.error_ratio = 0.5
    incident = wait_until(lambda: open_incident(engine, "shop/shop-errors"), "the error-ratio incident")
    [evidence] = [e for e in queries.incident_detail(engine, incident.id).evidence if e.kind == "rule"]
    assert 0.2 < evidence.data["value"] <= 0.5 and evidence.data["threshold"] == 0.2
    shop.error_ratio = 0.0
    wait_until(lambda: resolved(engine, "shop/shop-errors"), "the error-ratio incident to resolve")

    with read_session(engine) as session:  # node-exporter's series came through Prometheus too
        cpu = session.exec(select(RuleState).where(RuleState.rule == "host-cpu")).all()
    assert cpu == [] or all(0 <= row.value <= 1 for row in cpu)  # never above 1: no row needed
    assert open_incident(engine, "host/host-cpu") is None


def test_a_parent_outage_suppresses_the_child_until_it_resolves(stack):
    _, db, web, engine = stack
    db.down()
    parent = wait_until(lambda: open_incident(engine, "db/db-host"), "the parent's incident")
    web.fault("errors")

    def child_suppressed():
        with read_session(engine) as session:
            return session.exec(select(Finding).where(Finding.target == "shop-web",
                                                      Finding.suppressed_by.is_not(None))).first()
    child = wait_until(child_suppressed, "the child's suppressed finding")
    assert child.incident_id == parent.id and child.suppressed_by == f"parent incident #{parent.id} (db-host)"
    assert open_incident(engine, "shop/shop-web") is None

    db.up()  # the parent recovers while the child still fails: the child opens its own incident
    wait_until(lambda: open_incident(engine, "shop/shop-web"), "the child's own incident")
    web.fault("none")
    wait_until(lambda: resolved(engine, "shop/shop-web"), "the child's incident to resolve")


def test_a_silence_suppresses_and_then_expires(stack):
    shop, _, _, engine = stack
    with write_session(engine) as session:
        silence = silences.add_silence(session, matchers=[{"label": "rule", "op": "=", "value": "rule:shop-errors"}],
                                   starts_at=utcnow(), ends_at=utcnow() + timedelta(seconds=12), author="test",
                                   comment="known error burst", now=utcnow())
    shop.error_ratio = 0.6

    def silenced():
        with read_session(engine) as session:
            return session.exec(select(Finding).where(Finding.suppressed_by == f"silence #{silence.id}")).first()
    wait_until(silenced, "the silenced finding")
    assert open_incident(engine, "shop/shop-errors") is None
    incident = wait_until(lambda: open_incident(engine, "shop/shop-errors"), "the incident after expiry")
    timeline = [t.message for t in queries.incident_detail(engine, incident.id).timeline]
    assert any(f"after silence #{silence.id} ended" in m for m in timeline)
    shop.error_ratio = 0.0
