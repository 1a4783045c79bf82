"""The overview of what is watched, on SQLite and PostgreSQL: each target's state and last result
from the probe cycle, each rule group's state, uptime from the real rollups, one status per
service (the worst of its members, down while it has an open incident), worst first."""

from datetime import UTC, datetime, timedelta

from detectors.cycle import run_rules
from ledger.overview import overview
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from policies.loader import load_policy
from probes.context import failed, observe
from probes.cycle import probe_samples, record

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
POLICY = """
targets:
  - {name: web, kind: http, service: shop, url: "http://127.0.0.1:9/", failure_threshold: 2,
     conditions: ["[STATUS] == 200"]}
  - {name: api, kind: http, service: shop, url: "http://127.0.0.1:9/api", failure_threshold: 2}
  - {name: db-ping, kind: tcp, service: db, host: 127.0.0.1, port: 9, failure_threshold: 2}
  - {name: cache, kind: tcp, service: cache, host: 127.0.0.1, port: 9}
"""
RULES = """
rules:
  - name: shop-fast
    kind: threshold
    service: shop
    series: probe_duration_seconds{service="shop"}
    above: 0.001
    for: 5m
    window: 1m
    reduce: max
  - name: shop-slow
    kind: threshold
    service: shop
    series: probe_duration_seconds{service="shop"}
    above: 0.1
    window: 1m
    reduce: max
"""


def test_each_target_and_rule_with_its_state_last_result_and_uptime(engine, tmp_path, policy_dir):
    directory = policy_dir(POLICY)
    (directory / "rules.yaml").write_text(RULES)
    policy = load_policy(directory)
    store = SampleStore(tmp_path / "samples", now=lambda: NOW)
    web, api, db = (policy.target(name) for name in ("web", "api", "db-ping"))
    start = NOW - timedelta(hours=2)
    for minute in range(120):  # web fails one run in four; api always passes
        at = start + timedelta(minutes=minute)
        status = 503 if minute % 4 == 0 else 200
        store.append(probe_samples(web, _record(engine, web, observe(web, at, 12.0, {"STATUS": status}, status=status))))
        store.append(probe_samples(api, _record(engine, api, observe(api, at, 5.0, {}, status=200))))
    for seconds in (0, 10):  # db fails twice: past its threshold, an incident
        _record(engine, db, failed(db, NOW - timedelta(seconds=20 - seconds), 1.0, "cannot connect: connection refused"))
    _record(engine, web, observe(web, NOW, 12.0, {"STATUS": 503}, status=503))  # web: one failure of two
    store.flush()
    rollups = Rollups(store)
    rollups.maintain(timedelta(seconds=20), {"1m": timedelta(days=35), "1h": timedelta(days=400)})
    run_rules(engine, store, policy, NOW)

    services = {s.service: s for s in overview(engine, rollups, policy, NOW)}
    assert list(services) == ["db", "shop", "cache"]  # down, degraded, no data
    assert (services["db"].status, len(services["db"].open_incidents)) == ("down", 1)
    [ping] = services["db"].members
    assert (ping.status, ping.last_result) == ("down", "failed: cannot connect: connection refused")

    shop = {m.name: m for m in services["shop"].members}
    assert services["shop"].status == "degraded"
    assert (shop["web"].status, shop["web"].last_result, shop["web"].last_at) == (
        "degraded", "failed: [STATUS] == 200 -> got 503 (1 of 2 failures to fire)", NOW)
    assert shop["web"].uptime_24h == 0.75 and shop["api"].uptime_24h == 1.0
    assert shop["web"].uptime_30d == 0.75  # from the two hours rolled up, 10:00-12:00
    assert (shop["api"].status, shop["api"].last_result) == ("ok", "passed")
    assert (shop["shop-slow"].kind, shop["shop-slow"].status, shop["shop-slow"].last_result) == (
        "rule", "ok", "has not held")

    [pending] = [m for m in services["shop"].members if m.name.startswith("shop-fast")]
    assert (pending.kind, pending.status, pending.last_at) == ("rule", "degraded", NOW)
    assert pending.last_result.startswith("pending, value 0.012")

    [cache] = services["cache"].members
    assert (cache.status, cache.last_result, cache.uptime_24h) == ("unknown", "not probed yet", None)


def _record(engine, target, result):
    record(engine, target, result, now=lambda: result.observation.started_at)
    return result
