"""Training mode on exactly known history (tests/detectors/history.py) and a real ledger: a
suggestion that beats its rule, within the noise budget and resting on enough incidents, is
activated in shadow (evaluated, opening no incident), promoted after its shadow run, and rolled
back on its own when it fires far more live than in its backtest, with a note on the incidents
it opened; nothing is activated from a suggestion that rests on too few incidents."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import select

from detectors.cycle import run_rules
from learning.suggestions import revisions, suggest
from learning.training import TRAINING, train
from ledger.db import open_ledger, read_session, sqlite_url, write_session
from ledger.queries import incident_detail, list_incidents
from ledger.repo import incidents
from ledger.samples import SampleStore
from ledger.tables import Finding
from policies.loader import load_policy
from tests.detectors.history import END, minutes, write_history
from tests.remediation.support import write_policy
from tests.support import ROOT

LEARNING = ("noise: {{evaluation_interval: 1m}}\nlearning: {{mode: training_auto_create, noise_budget: 10, "
            "history: 7h, min_incidents: {least}, shadow_for: 1h, noise_margin: 2}}\nrules: []\n")


@pytest.fixture
def trained(tmp_path):
    def make(least: int):
        policy_dir = write_policy(tmp_path / "policy", targets="targets: []\nallow_empty: true\n",
                                  rules=LEARNING.format(least=least))
        store = SampleStore(tmp_path / "samples", now=lambda: END)
        write_history(store)
        engine = open_ledger(sqlite_url(tmp_path / "var"))
        with write_session(engine) as session:
            for opened, resolved in ((62, 95), (242, 260)):
                incidents.import_incident(session, incidents.PastIncident(
                    "shop", f"shop slow at {opened}", "critical", minutes(opened), minutes(resolved)), "export.csv",
                    "test", END)
        assert suggest(engine, store, load_policy(policy_dir), END) == [1]
        return policy_dir, store, engine

    return make


def learned(policy_dir):
    return {r.name: r for r in load_policy(policy_dir).rules.resolved if r.name in load_policy(policy_dir).learned}


def test_activated_in_shadow_then_promoted_then_rolled_back_on_noise(trained):
    policy_dir, store, engine = trained(2)
    assert train(engine, load_policy(policy_dir), policy_dir, END) == ["shop-latency-learned: activated in shadow"]
    rule = learned(policy_dir)["shop-latency-learned"]
    assert rule.shadow is True
    listed = subprocess.run([sys.executable, "-m", "app.cli", "--policy", str(policy_dir), "--data",
                             str(policy_dir.parent / "var"), "rules", "list", "--format", "json"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert [(r["name"], r["origin"], r["revision"], r["mode"]) for r in json.loads(listed.stdout)] == [
        ("shop-latency-learned", "learned", 1, "shadow")]

    # in shadow it is evaluated and its firings recorded, but it opens no incident
    before = len(list_incidents(engine))
    for m in range(0, 265):  # both excursions have passed by 260 min
        run_rules(engine, store, load_policy(policy_dir), now=minutes(m))
    with read_session(engine) as session:
        shadow = session.exec(select(Finding).where(Finding.rule == "rule:shop-latency-learned")).all()
    assert shadow and all(f.suppressed_by == incidents.SHADOW and f.incident_id is None for f in shadow)
    assert len(list_incidents(engine)) == before

    assert train(engine, load_policy(policy_dir), policy_dir, END + timedelta(minutes=30)) == []  # shadow_for: 1h
    later = END + timedelta(hours=2)
    assert train(engine, load_policy(policy_dir), policy_dir, later) == ["shop-latency-learned: promoted to live"]
    assert learned(policy_dir)["shop-latency-learned"].shadow is False

    # live, it fires every few minutes for two hours: far above its backtest's 7.4 a day
    for n in range(12):
        spec = incidents.FindingSpec(rule="rule:shop-latency-learned", target="shop", service="shop",
                                     severity="warning", summary="p99 high", correlation_key=f"shop/learned-{n}")
        at = later + timedelta(minutes=10 * n)
        with write_session(engine) as session:
            finding = incidents.open_finding(session, spec, [], at)
            incidents.close_finding(session, finding, at + timedelta(minutes=5), "ok again", "recovered")
    rolled = later + timedelta(hours=2, minutes=30)
    assert train(engine, load_policy(policy_dir), policy_dir, rolled) == ["shop-latency-learned: rolled back"]
    assert "shop-latency-learned" not in load_policy(policy_dir).learned
    history = revisions(engine, "shop-latency-learned")
    assert [(r.revision, r.actor, r.rule is None) for r in history] == [
        (1, TRAINING, False), (2, TRAINING, False), (3, TRAINING, True)]
    assert history[2].reason.startswith("training: rolled back, 115.20 episodes a day live since 2026-11-02 08:30 UTC "
                                        "against 6.857 in its backtest (margin x2)")
    noted = incident_detail(engine, sorted(i.id for i in list_incidents(engine))[-1]).timeline[-1]
    assert noted.actor == TRAINING and noted.message.startswith("learned rule shop-latency-learned: training: rolled back")


def test_a_shadow_rule_that_fires_far_more_than_its_backtest_never_goes_live(trained):
    policy_dir, store, engine = trained(2)
    train(engine, load_policy(policy_dir), policy_dir, END)
    for n in range(6):
        spec = incidents.FindingSpec(rule="rule:shop-latency-learned", target="shop", service="shop",
                                     severity="warning", summary="p99 high", correlation_key="shop/learned",
                                     labels={"shadow": "true"})
        at = END + timedelta(minutes=10 * n)
        with write_session(engine) as session:
            finding = incidents.open_finding(session, spec, [], at)
            incidents.close_finding(session, finding, at + timedelta(minutes=5), "ok again", "recovered")
    assert train(engine, load_policy(policy_dir), policy_dir, END + timedelta(hours=1)) == [
        "shop-latency-learned: removed after its shadow run"]
    assert load_policy(policy_dir).learned == frozenset()


def test_nothing_is_activated_from_too_few_incidents(trained):
    policy_dir, _, engine = trained(3)
    assert train(engine, load_policy(policy_dir), policy_dir, END) == []
    assert load_policy(policy_dir).learned == frozenset() and not (policy_dir / "learned-rules.yaml").exists()


def test_nothing_is_activated_when_the_backtest_does_not_beat_the_rule(tmp_path):
    """A hand-written rule already catches both outages, quietly: the learned candidates do no
    better, none is kept, and training has nothing to activate."""
    policy_dir = write_policy(tmp_path / "policy", targets="targets: []\nallow_empty: true\n",
                              rules=LEARNING.format(least=1).replace("rules: []", """rules:
  - {name: shop-latency, kind: latency, service: shop, percentile: 50, above: 0.5, window: 1m}"""))
    store = SampleStore(tmp_path / "samples", now=lambda: END)
    write_history(store)
    engine = open_ledger(sqlite_url(tmp_path / "var"))
    with write_session(engine) as session:
        for opened, resolved in ((62, 95), (242, 260)):
            incidents.import_incident(session, incidents.PastIncident(
                "shop", f"shop slow at {opened}", "critical", minutes(opened), minutes(resolved)), "export.csv",
                "test", END)
    assert suggest(engine, store, load_policy(policy_dir), END) == []
    assert train(engine, load_policy(policy_dir), policy_dir, END) == []
    assert load_policy(policy_dir).learned == frozenset()
