"""Backtests over samples with exactly known excursions: the episodes of every rule kind (with
``for``, ``keep_firing_for`` and absence), the incidents they catch and miss, recall, precision
and lead time; and the replay of a rule matches what the worker's detector cycle did live over
the same samples."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlmodel import select

from detectors.backtest import Episode, KnownIncident, compare_live, replay, score
from detectors.cycle import run_rules
from ledger.db import read_session
from ledger.samples import Sample, SampleStore
from ledger.tables import Finding
from policies.loader import load_policy
from tests.detectors.history import END, RULES, T0, minutes, write_history


@pytest.fixture
def history(tmp_path, policy_dir):
    store = SampleStore(tmp_path / "samples", now=lambda: END)
    write_history(store)
    directory = policy_dir("targets: []\nallow_empty: true\n")
    (directory / "rules.yaml").write_text(RULES)
    return load_policy(directory), store


def rule(policy, name):
    return next(r for r in policy.rules.resolved if r.name == name)


def spans(episodes: list[Episode]) -> list[tuple[float, float | None]]:
    return [((e.start - T0) / timedelta(minutes=1), e.end and (e.end - T0) / timedelta(minutes=1)) for e in episodes]


def test_latency_with_for_and_keep_firing_for(history):
    """Active while a 1 min window holds a 2 s sample: from 60 to 90 min; pending for 5 min, so it
    fires at 65; the last active evaluation is at 90, kept firing 10 min: recovered at 100."""
    policy, store = history
    result = replay(rule(policy, "shop-latency"), store, T0, END, policy.rules.noise)
    assert spans(result.episodes) == [(65, 100), (245, 260)]
    assert result.evaluations == 391 and result.services == {"shop"} and result.warnings == []
    assert result.fires_per_day() == pytest.approx(2 / (390 / 1440))
    assert result.time_in_alert_ratio() == pytest.approx(50 / 390)


def test_threshold_without_for_fires_at_once(history):
    policy, store = history
    result = replay(rule(policy, "shop-slow-avg"), store, T0, END, policy.rules.noise)
    assert spans(result.episodes) == [(60, 93), (240, 253)]  # the 3 min window keeps the last 2 s sample


def test_absence(history):
    """The last sample before the gap is at 119 min: older than 5 min from 125 (age 6 min > 5),
    and a sample again at 140."""
    policy, store = history
    result = replay(rule(policy, "shop-silent"), store, T0, END, policy.rules.noise)
    assert spans(result.episodes) == [(125, 140)]


def test_an_episode_running_at_the_end_stays_open(history):
    policy, store = history
    result = replay(rule(policy, "shop-latency"), store, T0, minutes(250), policy.rules.noise)
    assert spans(result.episodes) == [(65, 100), (245, None)]


def test_score_caught_missed_recall_precision_and_lead_time(history):
    """Incident 1 opens 5 min after the rule fired (lead -300 s); incident 2 comes after every
    episode and more than an hour after the last one: missed. One of two episodes overlaps an
    incident."""
    policy, store = history
    result = replay(rule(policy, "shop-latency"), store, T0, END, policy.rules.noise)
    incidents = [KnownIncident(1, "shop slow", minutes(70), minutes(95)),
                 KnownIncident(2, "shop down", minutes(330), minutes(350))]
    found = score(result.episodes, incidents, END)
    assert [i.id for i in found.caught] == [1] and [i.id for i in found.missed] == [2]
    assert found.recall() == 0.5 and found.precision(len(result.episodes)) == 0.5
    assert found.lead_times == [-300.0] and found.median_lead_time() == -300.0


def test_an_episode_up_to_an_hour_before_an_incident_caught_it_early():
    episodes = [Episode({}, minutes(0), minutes(10))]
    early = score(episodes, [KnownIncident(1, "x", minutes(60), None)], minutes(100))
    late = score(episodes, [KnownIncident(1, "x", minutes(71), None)], minutes(100))
    assert early.lead_times == [-3600.0] and late.missed and late.precision(1) == 0.0


def test_no_samples_in_the_range_is_said(history):
    policy, store = history
    result = replay(rule(policy, "shop-latency"), store, END + timedelta(days=1), END + timedelta(days=2),
                    policy.rules.noise)
    assert result.episodes == [] and result.warnings == ["no samples of the rule's series in the range"]


def test_a_range_too_long_is_cut_to_its_latest_part(history):
    policy, store = history
    result = replay(rule(policy, "shop-latency"), store, T0, END, policy.rules.noise, max_evaluations=200)
    assert result.evaluations == 200 and result.start == END - timedelta(minutes=199)
    assert spans(result.episodes) == [(245, 260)]
    assert result.warnings[0].startswith("the range holds more evaluations than the 200 a backtest makes at 1m")


def test_the_replay_matches_what_the_detector_cycle_did_live(history, engine):
    """The worker's cycle, run every minute over the same samples, opens and recovers findings at
    the replay's episode bounds."""
    policy, store = history
    for m in range(0, 391):
        run_rules(engine, store, policy, now=minutes(m))
    for name in ("shop-latency", "shop-slow-avg", "shop-silent"):
        with read_session(engine) as session:
            live = [(f.first_seen.replace(tzinfo=UTC), f.recovered_at and f.recovered_at.replace(tzinfo=UTC))
                    for f in session.exec(select(Finding).where(Finding.rule == f"rule:{name}").order_by(Finding.id))]
        replayed = replay(rule(policy, name), store, T0, END, policy.rules.noise).episodes
        assert [(e.start, e.end) for e in replayed] == live, name
        assert compare_live(replayed, live, END) == {"both": len(live), "replay_only": 0, "live_only": 0}


MORE_RULES = """
noise: {evaluation_interval: 1m}
rules:
  - {name: shop-errors, kind: errors, service: shop, errors: 'errors_per_second{service="shop"}',
     requests: 'requests_per_second{service="shop"}', above: 0.02, window: 1m}
  - {name: shop-traffic, kind: traffic, service: shop, series: 'requests_per_second{service="shop"}', below: 50,
     window: 1m}
  - {name: shop-cpu, kind: saturation, service: shop, series: 'cpu_ratio{service="shop"}', above: 0.9, window: 1m}
  - {name: shop-oom, kind: log_signature, service: shop, target: app-log, signature: oom, above: 2, window: 2m}
"""
LOGS_TARGET = """
targets:
  - name: app-log
    kind: logs
    service: shop
    path: /var/log/shop.log
    signatures:
      - {name: oom, pattern: OutOfMemory}
"""


@pytest.fixture
def more_history(tmp_path, policy_dir):
    """Every minute: 100 requests/s (10 from 300 to 310 min), errors 5/s from 100 to 120 min,
    CPU 0.3 (0.95 from 200 to 215 min), and 2 OutOfMemory lines a minute from 150 to 153 min."""
    store = SampleStore(tmp_path / "more", now=lambda: END)
    shop = {"service": "shop", "target": "web", "kind": "http"}
    store.append([Sample(name, shop, value, minutes(m)) for m in range(0, 391) for name, value in (
        ("requests_per_second", 10.0 if 300 <= m < 310 else 100.0),
        ("errors_per_second", 5.0 if 100 <= m < 120 else 0.0),
        ("cpu_ratio", 0.95 if 200 <= m < 215 else 0.3))])
    logs = {"service": "shop", "target": "app-log", "kind": "logs", "signature": "oom"}
    store.append([Sample("log_signature_matches", logs, 2.0 if 150 <= m < 153 else 0.0, minutes(m))
                  for m in range(0, 391)])
    store.flush()
    directory = policy_dir(LOGS_TARGET)
    (directory / "rules.yaml").write_text(MORE_RULES)
    return load_policy(directory), store


@pytest.mark.parametrize("name, expected", [
    ("shop-errors", [(100, 121)]),   # 2.5 errors/s of 100 requests/s over each window holding one 5
    ("shop-traffic", [(301, 310)]),  # the mean of a window holding 100 and 10 is 55: not below 50
    ("shop-cpu", [(201, 215)]),
    ("shop-oom", [(151, 154)]),      # a 2 min window holds 4 lines from 151 (150, 151) to 153 (151, 152)
])
def test_errors_traffic_saturation_and_log_signatures(more_history, sqlite_engine, name, expected):
    """Each replayed as it ran live, minute by minute (on SQLite: the replay is what is tested)."""
    engine = sqlite_engine
    policy, store = more_history
    replayed = replay(rule(policy, name), store, T0, END, policy.rules.noise).episodes
    assert spans(replayed) == expected
    for m in range(0, 391):
        run_rules(engine, store, policy, now=minutes(m))
    with read_session(engine) as session:
        live = [(f.first_seen.replace(tzinfo=UTC), f.recovered_at and f.recovered_at.replace(tzinfo=UTC))
                for f in session.exec(select(Finding).where(Finding.rule == f"rule:{name}"))]
    assert [(e.start, e.end) for e in replayed] == live


def test_a_burn_rate_rule_replays_as_it_ran_live(tmp_path, policy_dir, sqlite_engine):
    """Probe runs fail from 60 to 90 min; objective 0.99 (a 1 % budget), factor 14.4: the hour's
    failed share passes 14.4 % at 68 min (9 of 61 runs) while the last 5 minutes all failed; the
    5 minutes stop burning at 95."""
    store = SampleStore(tmp_path / "burn", now=lambda: END)
    store.append([Sample("probe_success", {"service": "shop", "target": "web", "kind": "http"},
                         0.0 if 60 <= m < 90 else 1.0, minutes(m)) for m in range(0, 391)])
    store.flush()
    directory = policy_dir("targets: []\nallow_empty: true\n")
    (directory / "rules.yaml").write_text("noise: {evaluation_interval: 1m}\nrules:\n"
                                          "  - {name: shop-burn, kind: burn_rate, service: shop, objective: 0.99}\n")
    policy = load_policy(directory)
    replayed = replay(rule(policy, "shop-burn"), store, T0, END, policy.rules.noise).episodes
    assert spans(replayed) == [(68, 95)]
    for m in range(0, 391):
        run_rules(sqlite_engine, store, policy, now=minutes(m))
    with read_session(sqlite_engine) as session:
        live = [(f.first_seen.replace(tzinfo=UTC), f.recovered_at and f.recovered_at.replace(tzinfo=UTC))
                for f in session.exec(select(Finding).where(Finding.rule == "rule:shop-burn"))]
    assert [(e.start, e.end) for e in replayed] == live
