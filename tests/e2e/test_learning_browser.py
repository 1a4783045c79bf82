"""Learned rules end to end on real processes: a real Prometheus holding two days of history
(backfilled with promtool, as an operator's existing Prometheus holds weeks), imported with
`workbench samples import` as the policy's prometheus targets label what they write; past
outages imported with `workbench incidents import`; `workbench rules suggest` finds a rule for
the service whose outages no rule caught and a tuning of the noisy rule; one is accepted in
headless Chromium on the Rule suggestions page; the running worker reloads it and evaluates it
on its next cycle; it is removed again with `workbench rules rollback`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from ledger.db import open_ledger, read_session, sqlite_url, utcnow
from ledger.samples import Sample, SampleStore
from ledger.tables import RuleState
from policies.loader import load_policy
from tests.e2e.conftest import TARGETS
from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus (promtool)")

DAYS = 2
PROM_TARGETS = """
  - {{name: shop-api, kind: prometheus, service: shop, url: "{url}", query: 'shop_request_seconds{{service="shop"}}',
     metric: shop_request_seconds, interval: 1h}}
  - {{name: cart-api, kind: prometheus, service: cart, url: "{url}", query: 'shop_request_seconds{{service="cart"}}',
     metric: shop_request_seconds, interval: 1h}}
"""
RULES = """
noise: {evaluation_interval: 1m}
learning: {history: 3d, noise_budget: 1}
services:
  shop: {latency: 'shop_request_seconds{service="shop"}'}
  cart: {latency: 'shop_request_seconds{service="cart"}'}
rules:
  - {name: shop-jumpy, kind: threshold, series: 'shop_request_seconds{service="shop"}', reduce: max, above: 0.5,
     window: 1m, service: shop}
"""


def slow(service: str, minute_of_day: int) -> bool:
    """shop: slow 03:00-03:40 (outages) and 15:00-15:08 (blips nobody minded); cart: 05:00-05:30."""
    if service == "shop":
        return 180 <= minute_of_day < 220 or 900 <= minute_of_day < 908
    return 300 <= minute_of_day < 330


@pytest.fixture
def prometheus(tmp_path):
    """A real Prometheus whose TSDB holds the last two days of shop_request_seconds, a sample a
    minute for shop and cart, backfilled with promtool before it starts."""
    end = utcnow().replace(second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=DAYS)
    lines = ["# HELP shop_request_seconds latency", "# TYPE shop_request_seconds gauge"]
    minute = start
    while minute <= end:
        for service in ("shop", "cart"):
            value = 2.0 if slow(service, minute.hour * 60 + minute.minute) else 0.1
            lines.append(f'shop_request_seconds{{service="{service}"}} {value} {minute.timestamp():.0f}')
        minute += timedelta(minutes=1)
    (tmp_path / "history.om").write_text("\n".join(lines) + "\n# EOF\n")
    data = tmp_path / "prometheus"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp_path / "history.om"), str(data)],
                   check=True, capture_output=True, timeout=300)
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1h}\nscrape_configs: []\n")
    port = free_port()
    process = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=30d",
                                f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), "Prometheus with history to be ready", attempts=600)
        yield url, start, end
    finally:
        process.terminate()
        process.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def workbench_cli(policy, data, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "--policy", str(policy), "--data", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture
def policy_dir(tmp_path, prometheus):
    """The demo target of the e2e workbench, the two prometheus targets, the rules above, and a
    policy reload every second."""
    def write(targets: str, settings: str | None = None):
        directory = tmp_path / "policy"
        directory.mkdir(exist_ok=True)
        (directory / "targets.yaml").write_text(targets + PROM_TARGETS.format(url=prometheus[0]))
        (directory / "rules.yaml").write_text(RULES)
        (directory / "settings.yaml").write_text("policy_reload_interval: 1s\n")
        return directory

    return write


@pytest.fixture
def history(prometheus, policy_dir, tmp_path):
    """Before the workbench starts: the Prometheus history imported for both targets, and the
    outages: shop's two at 03:10 (the blips at 15:00 had none), cart's two at 05:10."""
    url, start, end = prometheus

    def seed(data_dir):
        policy = policy_dir(TARGETS.format(port=9))
        for name, service in (("shop-api", "shop"), ("cart-api", "cart")):
            done = workbench_cli(policy, data_dir, "samples", "import", "--prometheus", url, "--query",
                                 f'shop_request_seconds{{service="{service}"}}', "--since", start.isoformat(),
                                 "--name", name)
            assert done.returncode == 0 and done.stdout.startswith("imported "), done.stderr
        rows = ["service,title,severity,opened_at,resolved_at"]
        for day in range(1, DAYS + 1):
            for service, hour in (("shop", 3), ("cart", 5)):
                opened = (start + timedelta(days=day)).replace(hour=hour, minute=10)
                if start < opened < end:
                    rows.append(f"{service},{service} slow,critical,{opened.isoformat()},"
                                f"{(opened + timedelta(minutes=25)).isoformat()}")
        (tmp_path / "outages.csv").write_text("\n".join(rows) + "\n")
        done = workbench_cli(policy, data_dir, "incidents", "import", str(tmp_path / "outages.csv"))
        assert done.returncode == 0, done.stderr

    return seed


def test_learned_from_prometheus_history_accepted_in_the_browser_evaluated_and_rolled_back(workbench, page, tmp_path, screenshots):
    policy, data = tmp_path / "policy", workbench.data_dir
    done = workbench_cli(policy, data, "rules", "suggest")
    assert done.returncode == 0, done.stderr
    suggestions = {s["name"]: s for s in json.loads(workbench_cli(policy, data, "rules", "suggestions", "--format",
                                                                   "json").stdout)}
    assert {"cart-latency-learned", "shop-jumpy-tuned"} <= set(suggestions)
    cart = suggestions["cart-latency-learned"]
    assert cart["kind"] == "new" and cart["backtest"]["suggested"]["recall"] == 1.0
    assert suggestions["shop-jumpy-tuned"]["backtest"]["suggested"]["episodes"] < \
        suggestions["shop-jumpy-tuned"]["backtest"]["current"]["episodes"]

    page.goto(f"{workbench.ui_url}rules")
    expect(page.get_by_text("cart-latency-learned").first).to_be_visible(timeout=60_000)
    reason = page.get_by_label(f"Reason for #{cart['id']}")
    form = page.locator("div").filter(has=reason).filter(has=page.get_by_role("button", name="Accept")).last
    reason.fill("it would have caught both cart outages")
    form.get_by_role("button", name="Accept").click()
    workbench.wait_for("the rule in learned-rules.yaml", lambda: (policy / "learned-rules.yaml").exists())
    assert load_policy(policy).learned == {"cart-latency-learned"}
    page.screenshot(path=screenshots / "accepted.png", full_page=True)

    # live: cart is slow now; the worker, having reloaded the policy, evaluates the learned rule
    now = utcnow()
    store = SampleStore(data / "samples")
    store.append([Sample("shop_request_seconds", {"service": "cart", "target": "cart-api", "kind": "prometheus",
                                                  "exported_service": "cart"}, 2.0, now - timedelta(seconds=s))
                  for s in range(0, 120, 15)])
    store.flush()
    engine = open_ledger(sqlite_url(data))

    def evaluated():
        with read_session(engine) as session:
            return session.exec(select(RuleState).where(RuleState.rule == "cart-latency-learned")).first()

    # the next detector cycle: evaluation_interval is 1m
    state = wait_until(lambda: workbench.alive() and evaluated(), "the worker to evaluate the learned rule",
                       attempts=1500)
    assert state.state in ("pending", "firing")
    engine.dispose()

    done = workbench_cli(policy, data, "rules", "rollback", "cart-latency-learned", "0", "--reason", "trying it only")
    assert done.returncode == 0, done.stderr
    assert load_policy(policy).learned == frozenset()
    revisions = json.loads(workbench_cli(policy, data, "rules", "revisions", "cart-latency-learned", "--format",
                                         "json").stdout)
    assert [(r["revision"], r["rule"] is None) for r in revisions] == [(1, False), (2, True)]
