"""Onboarding a service in one command against a real Prometheus: a checkout service exposing the
usual metrics (a request counter with a code label, a request-duration histogram, a connection
pool's in-use and max gauges, a queue depth, up) is scraped; `workbench services add` recognises
them, writes targets, golden signals and starter rules into a copy of the shipped policy keeping
its comments; a real worker on that policy opens one incident for each fault the test switches
(pool saturation, errors, latency, down, a bad deploy), and the draft ranks the true cause first,
citing the evidence that holds its numbers."""

from __future__ import annotations

import math
import shutil
import threading
from datetime import timedelta

import httpx
import pytest
import yaml

from app.cli import main
from hypotheses.refine import incident_draft
from ledger import queries
from ledger.db import open_ledger, sqlite_url, utcnow
from ledger.histograms import bucket_quantile
from ledger.samples import SampleStore
from policies.loader import load_policy
from tests.integration.conftest import WorkerProcess
from tests.support import ROOT, LocalServer, QuietHandler, wait_until

pytestmark = pytest.mark.integration
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PER_SCRAPE = 50
LOOK_BACK = timedelta(seconds=12)  # hypotheses.yaml's evidence.before here


class Checkout:
    """A service with conventional metrics and a fault switch: ``pool`` fills its pool, and then
    its requests wait (2 s) and a fifth of them fail with 503; ``errors`` fails a fifth of them
    with 503; ``latency`` answers in 2 s; ``down`` stops answering scrapes; ``deploy`` runs version
    1.5.0 (its build_info says so), which fails a fifth of them."""

    def __init__(self):
        self.fault = None
        self.counts = {"200": 0, "503": 0}
        self.buckets = dict.fromkeys(BUCKETS, 0)
        self.total = 0
        self.lock = threading.Lock()
        checkout = self

        class Handler(QuietHandler):
            def do_GET(self):
                if checkout.fault == "down":
                    self.close_connection = True
                    return
                self.reply(200, checkout.scrape().encode(), "text/plain; version=0.0.4")

        self.local = LocalServer(Handler)
        self.address = self.local.address

    def scrape(self) -> str:
        with self.lock:
            latency = 2.0 if self.fault in ("pool", "latency") else 0.04
            failed = PER_SCRAPE // 5 if self.fault in ("pool", "errors", "deploy") else 0
            self.counts["503"] += failed
            self.counts["200"] += PER_SCRAPE - failed
            self.total += PER_SCRAPE
            for le in BUCKETS:
                self.buckets[le] += PER_SCRAPE if latency <= le else 0
            in_use = 20 if self.fault == "pool" else 3
            lines = ["# TYPE checkout_http_requests_total counter"]
            lines += [f'checkout_http_requests_total{{code="{code}"}} {n}' for code, n in self.counts.items()]
            lines += ["# TYPE checkout_http_request_duration_seconds histogram"]
            lines += [f'checkout_http_request_duration_seconds_bucket{{le="{le}"}} {n}' for le, n in self.buckets.items()]
            lines += [f'checkout_http_request_duration_seconds_bucket{{le="+Inf"}} {self.total}',
                      f"checkout_http_request_duration_seconds_sum {self.total * latency}",
                      f"checkout_http_request_duration_seconds_count {self.total}",
                      "# TYPE checkout_db_pool_connections_in_use gauge", f"checkout_db_pool_connections_in_use {in_use}",
                      "# TYPE checkout_db_pool_connections_max gauge", "checkout_db_pool_connections_max 20",
                      "# TYPE checkout_jobs_queue_depth gauge", f"checkout_jobs_queue_depth {400 if self.fault == 'pool' else 2}",
                      "# TYPE checkout_build_info gauge",
                      f'checkout_build_info{{version="{"1.5.0" if self.fault == "deploy" else "1.4.2"}"}} 1']
            return "\n".join(lines) + "\n"

    def close(self):
        self.local.close()


@pytest.fixture
def checkout(peers):
    service = Checkout()
    peers.scrape("checkout", [service.address])
    peers.wait_for('checkout_http_requests_total{job="checkout"}')
    yield service
    peers.scrape("checkout", [])
    service.close()


def test_services_add_onboards_a_service_whose_each_fault_opens_one_incident_led_by_its_cause(
        checkout, peers, tmp_path, capsys):
    policy = tmp_path / "policy"
    shutil.copytree(ROOT / "policies", policy)
    rules = yaml.safe_load((policy / "rules.yaml").read_text())
    (policy / "rules.yaml").write_text((policy / "rules.yaml").read_text().replace(
        # on the test's time scale; each fault flips the errors rule again, so flapping is judged over 20 s
        "rules:\n", "noise: {evaluation_interval: 1s, flap_window: 20s}\nrules:\n", 1))
    hypotheses = policy / "hypotheses.yaml"  # the hypotheses look back on this test's time scale too
    hypotheses.write_text(hypotheses.read_text().replace("before: 30m", f"before: {LOOK_BACK.seconds}s", 1))
    args = ["--policy", str(policy), "--data", str(tmp_path / "var"), "services", "add", "checkout",
            "--prometheus", peers.prometheus.url, "--selector", '{job="checkout"}', "--interval", "1s",
            "--rate-window", "5s"]  # Prometheus scrapes every second here
    checkout.fault = "errors"  # some history for the backtest: an error burst of 10 s, 10 s before onboarding
    started = utcnow()
    wait_until(lambda: utcnow() - started > timedelta(seconds=10), "an error burst")
    checkout.fault = None
    wait_until(lambda: utcnow() - started > timedelta(seconds=20), "the burst to pass")

    assert main([*args, "--history", "40s"]) == 1  # without --yes, and no terminal to ask: nothing written
    out = capsys.readouterr().out
    assert "Backtest of the rules over Prometheus's last 40s:" in out
    assert "checkout-errors: would have fired 1 time(s) over the last 40s" in out  # the burst
    assert "checkout-latency: would have fired 0 time(s)" in out and "checkout-saturation: would have fired 0" in out
    assert "checkout_http_requests_total: traffic, errors where code is 5xx" in out
    assert "checkout_http_request_duration_seconds_bucket: latency" in out
    assert "checkout_db_pool_connections_in_use / checkout_db_pool_connections_max: saturation of a pool" in out
    assert "checkout_jobs_queue_depth: a queue's depth" in out and "up: a probe" in out
    assert "checkout" not in (policy / "targets.yaml").read_text()

    assert main([*args, "--yes"]) == 0
    assert "Written: 8 target(s), 3 rule(s), golden signals of checkout" in capsys.readouterr().out
    text = (policy / "targets.yaml").read_text()
    assert text.startswith("# What the workbench watches.")  # the operator's comments are kept
    loaded = load_policy(policy)
    assert {t.name for t in loaded.targets} >= {"checkout-up", "checkout-traffic", "checkout-errors",
                                                "checkout-latency", "checkout-latency-buckets", "checkout-build-info",
                                                "checkout-db-pool-connections-utilization",
                                                "checkout-jobs-queue-depth"}
    signals = loaded.rules.services["checkout"]
    assert (signals.latency.series, signals.latency.type, signals.traffic.series, signals.errors.series) == (
        "checkout_latency_buckets", "histogram", "checkout_requests_per_second", "checkout_errors_per_second")
    assert [(s.series, s.unit, s.name) for s in signals.saturation] == [
        ("checkout_db_pool_connections_utilization", "ratio", "db pool connections in use")]
    assert len(loaded.rules.rules) == len(rules["rules"]) + 3
    assert main([*args, "--yes"]) == 1  # twice: refused, nothing changes
    assert "already there" in capsys.readouterr().err
    assert (policy / "targets.yaml").read_text() == text

    worker = WorkerProcess(policy, tmp_path / "var", tmp_path / "worker.log").start()
    engine = open_ledger(sqlite_url(tmp_path / "var"))
    store = SampleStore(tmp_path / "var" / "samples")
    try:
        for fault, finding, causes in FAULTS:
            checkout.fault = fault
            incident = wait_until(lambda: next((i for i in queries.list_incidents(engine)
                                                if i.service == "checkout" and i.resolved_at is None), None),
                                  f"an incident of checkout ({fault})")
            wait_until(lambda: finding in {f.rule for f in queries.incident_detail(engine, incident.id).findings},
                       f"{finding} to fire ({fault})")
            assert [i.correlation_key for i in queries.list_incidents(engine)
                    if i.resolved_at is None and i.service == "checkout"] == ["checkout/checkout-up"], fault
            _, draft = incident_draft(engine, store, load_policy(policy), incident.id, utcnow())
            top = draft.hypotheses[0]
            assert top.id in causes, (fault, [h.id for h in draft.hypotheses])
            kinds = {e.id: e.kind for e in draft.evidence}
            assert {"rule", "probe", "change"} & {kinds[e] for e in top.evidence_ids}, (fault, top.evidence_ids)
            checkout.fault = None
            resolved = wait_until(lambda: queries.incident_detail(engine, incident.id).resolved_at,
                                  f"the {fault} incident to resolve", attempts=600)
            # the next fault is a new one, not this one relapsing: it starts past the look-back
            wait_until(lambda: utcnow() - resolved > LOOK_BACK, "the look-back to pass", attempts=300)
    finally:
        worker.stop()
        engine.dispose()


# fault, the finding it must open, the hypotheses that name its true cause (first in the draft)
FAULTS = [
    ("pool", "rule:checkout-saturation", ("resource-exhausted", "saturation-rule")),
    ("errors", "rule:checkout-errors", ("error-rate",)),
    ("latency", "rule:checkout-latency", ("latency-regression", "latency-rule")),
    ("down", "probe:prometheus", ("instance-down",)),
    ("deploy", "rule:checkout-errors", ("new-version",)),
]


def test_quantiles_from_the_buckets_are_those_histogram_quantile_computes(checkout, peers):
    """The Trends page's p50/p95/p99 of a histogram signal come from its buckets' rates: at each of
    several instants over fast, slow and mixed traffic, the workbench's quantile of the rates
    Prometheus returns equals Prometheus's own histogram_quantile over the same rates."""
    rates = 'sum by (le) (rate(checkout_http_request_duration_seconds_bucket{job="checkout"}[5s]))'
    wait_until(lambda: len(instant(peers, rates, utcnow().timestamp())) == len(BUCKETS) + 1, "a rate of each bucket",
               attempts=200)
    checked = []
    for fault in (None, "latency", None):
        checkout.fault = fault
        compared = 0
        while compared < 3:
            at = utcnow().timestamp()
            wait_until(lambda: utcnow().timestamp() > at + 2, "two scrapes", attempts=100)
            buckets = [(float(s["metric"]["le"]), float(s["value"][1])) for s in instant(peers, rates, at)]
            if len(buckets) < len(BUCKETS) + 1:
                continue  # a scrape missed in this instant's window (a loaded machine): another instant
            for q in (0.5, 0.95, 0.99):
                (expected,) = instant(peers, f"histogram_quantile({q}, {rates})", at)
                value, mine = float(expected["value"][1]), bucket_quantile(q, buckets)
                assert mine == value or (math.isnan(mine) and math.isnan(value)), (fault, q, buckets, value)
                checked.append(value)
            compared += 1
    assert min(checked) <= 0.05 and max(checked) >= 2.0  # fast, slow and between were all compared


def instant(peers, query: str, at: float) -> list[dict]:
    answer = httpx.get(f"{peers.prometheus.url}/api/v1/query", params={"query": query, "time": at}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]
