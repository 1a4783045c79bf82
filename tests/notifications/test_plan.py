"""Routes, grouping and timing as Alertmanager does them, on a real ledger (SQLite and PostgreSQL),
delivering to a real local webhook receiver: group_wait, group_interval, repeat_interval, continue,
resolved notifications, debounce, silences, the notification log across a restart, escalation."""

from __future__ import annotations

from datetime import timedelta

from app.access import Identity
from app.operator import acknowledge, create_silence
from ledger.db import open_ledger
from tests.notifications.support import NOW, channels_policy, open_incident, outbox, resolve, run_pass

S = timedelta(seconds=1)


def routes(url: str, extra: str = "", route: str = "") -> str:
    return f"""
channels:
  - {{name: hook, kind: webhook, url: "{url}/hook"}}
  - {{name: pager, kind: webhook, url: "{url}/pager"}}
routes:
{route or '''  - channels: [hook]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h'''}
{extra}
"""


def test_an_incident_is_notified_after_group_wait_once_then_repeated_and_resolved(engine, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", routes(receiver.url))
    incident = open_incident(engine)
    run_pass(engine, policy, NOW + 10 * S)
    assert receiver.received == []  # within group_wait
    run_pass(engine, policy, NOW + 31 * S)
    run_pass(engine, policy, NOW + 60 * S)
    (path, headers, body), = receiver.received
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    assert body["category"] == "firing" and body["incident"]["id"] == incident
    assert body["incident"]["severity"] == "critical" and body["incident"]["state"] == "observed"
    assert body["link"].endswith(f"/?incident={incident}") and "shop-web failing" in body["summary"]
    run_pass(engine, policy, NOW + 31 * S + timedelta(hours=4))  # repeat_interval, unchanged
    assert [b["category"] for b in receiver.bodies()] == ["firing", "firing"]
    resolve(engine, incident, NOW + timedelta(hours=5))
    run_pass(engine, policy, NOW + timedelta(hours=5) + S)
    assert [b["category"] for b in receiver.bodies()] == ["firing", "firing", "resolved"]
    assert receiver.bodies()[-1]["resolved"][0]["id"] == incident and receiver.bodies()[-1]["status"] == "resolved"
    run_pass(engine, policy, NOW + timedelta(hours=10))
    assert len(receiver.received) == 3  # an ended group says nothing more
    assert {n.status for n in outbox(engine)} == {"sent"}


def test_a_group_gathers_incidents_and_notifies_changes_at_most_every_group_interval(engine, tmp_path, receiver):
    route = """  - channels: [hook]
    group_by: [service]
    group_wait: 30s
    group_interval: 5m"""
    policy = channels_policy(tmp_path / "p", routes(receiver.url, route=route))
    first = open_incident(engine, target="shop-web")
    second = open_incident(engine, target="shop-db", at=NOW + 10 * S)
    run_pass(engine, policy, NOW + 31 * S)
    (body,) = receiver.bodies()
    assert sorted(i["id"] for i in body["incidents"]) == [first, second] and body["group"] == {"service": "shop"}
    third = open_incident(engine, target="shop-cache", at=NOW + 60 * S)
    run_pass(engine, policy, NOW + 90 * S)
    assert len(receiver.received) == 1  # the change waits for group_interval
    run_pass(engine, policy, NOW + 31 * S + timedelta(minutes=5))
    assert sorted(i["id"] for i in receiver.bodies()[-1]["incidents"]) == [first, second, third]


def test_routes_match_in_order_and_continue_goes_on(engine, tmp_path, receiver):
    route = """  - matchers: ["severity=critical"]
    channels: [pager]
    group_wait: 1s
    continue: true
  - matchers: ['service=~"shop|cart"']
    channels: [hook]
    group_wait: 1s
  - channels: [pager]
    group_wait: 1s"""
    policy = channels_policy(tmp_path / "p", routes(receiver.url, route=route))
    open_incident(engine, service="shop", severity="critical")
    open_incident(engine, service="cart", severity="warning")
    open_incident(engine, service="billing", severity="warning")
    run_pass(engine, policy, NOW + 2 * S)
    got = sorted((path, body["incident"]["service"]) for path, _, body in receiver.received)
    assert got == [("/hook", "cart"), ("/hook", "shop"), ("/pager", "billing"), ("/pager", "shop")]


def test_the_notification_log_in_the_ledger_survives_a_restart(ledger_url, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", routes(receiver.url))
    engine = open_ledger(ledger_url)
    open_incident(engine)
    run_pass(engine, policy, NOW + 31 * S)
    engine.dispose()
    engine = open_ledger(ledger_url)  # a new process
    for minutes in (1, 6, 30):
        run_pass(engine, policy, NOW + timedelta(minutes=minutes))
    assert len(receiver.received) == 1  # neither repeated before repeat_interval
    run_pass(engine, policy, NOW + timedelta(hours=4, minutes=1))
    assert len(receiver.received) == 2  # nor forgotten
    engine.dispose()


def test_silenced_and_suppressed_incidents_are_not_notified(engine, tmp_path, receiver):
    policy = channels_policy(tmp_path / "p", routes(receiver.url))
    create_silence(engine, kind="maintenance", matchers=["service=shop"], duration="1h", comment="planned work",
                   author=Identity("alice", "operator", "test"), now=NOW)
    open_incident(engine, service="shop")
    notified = open_incident(engine, service="cart")
    run_pass(engine, policy, NOW + 31 * S)
    assert [b["incident"]["id"] for b in receiver.bodies()] == [notified]


def test_a_flapping_signal_is_debounced_per_correlation_key_and_category(engine, tmp_path, receiver):
    route = """  - channels: [hook]
    group_wait: 1s
    send_resolved: false"""
    policy = channels_policy(tmp_path / "p", routes(receiver.url, route=route, extra="debounce: 10m"))
    first = open_incident(engine)
    run_pass(engine, policy, NOW + 2 * S)
    resolve(engine, first, NOW + 60 * S)
    again = open_incident(engine, at=NOW + 70 * S)  # the same target fails again
    run_pass(engine, policy, NOW + 80 * S)
    assert [b["incident"]["id"] for b in receiver.bodies()] == [first]
    run_pass(engine, policy, NOW + timedelta(minutes=10, seconds=3))
    assert [b["incident"]["id"] for b in receiver.bodies()] == [first, again]


ESCALATION = """
escalations:
  - name: critical-path
    severities: [critical]
    steps:
      - {after: 10m, channels: [pager]}
    repeat: 30m
"""


def test_an_unacknowledged_critical_incident_escalates_and_an_acknowledged_one_does_not(engine, tmp_path, receiver):
    route = """  - channels: [hook]
    group_wait: 1s
    escalation: critical-path"""
    policy = channels_policy(tmp_path / "p", routes(receiver.url, route=route, extra=ESCALATION))
    ignored = open_incident(engine, service="shop")
    taken = open_incident(engine, service="cart")
    warning = open_incident(engine, service="blog", severity="warning")
    run_pass(engine, policy, NOW + 2 * S)
    acknowledge(engine, taken, actor=Identity("bob", "operator", "test"))
    run_pass(engine, policy, NOW + timedelta(minutes=9))
    assert not [p for p, _, _ in receiver.received if p == "/pager"]
    run_pass(engine, policy, NOW + timedelta(minutes=10, seconds=1))
    paged = [b for p, _, b in receiver.received if p == "/pager"]
    assert [(b["category"], b["incident"]["id"]) for b in paged] == [("escalation", ignored)]
    run_pass(engine, policy, NOW + timedelta(minutes=20))
    run_pass(engine, policy, NOW + timedelta(minutes=40, seconds=2))  # the last step again after `repeat`
    paged = [b["incident"]["id"] for p, _, b in receiver.received if p == "/pager"]
    assert paged == [ignored, ignored] and taken not in paged and warning not in paged


def test_a_group_that_ends_within_group_wait_after_it_notified_never_reuses_a_key(engine, tmp_path, receiver):
    route = """  - channels: [hook]
    group_by: [service]
    group_wait: 30s
    group_interval: 1s"""
    policy = channels_policy(tmp_path / "p", routes(receiver.url, route=route, extra="debounce: 1ms"))
    first = open_incident(engine, target="shop-web")
    run_pass(engine, policy, NOW + 31 * S)
    resolve(engine, first, NOW + 40 * S)
    run_pass(engine, policy, NOW + 45 * S)  # resolved: the group ends
    brief = open_incident(engine, target="shop-db", at=NOW + 50 * S)
    run_pass(engine, policy, NOW + 55 * S)
    resolve(engine, brief, NOW + 60 * S)  # within group_wait: never notified
    run_pass(engine, policy, NOW + 65 * S)
    open_incident(engine, target="shop-cache", at=NOW + 70 * S)
    run_pass(engine, policy, NOW + 101 * S)
    assert [b["category"] for b in receiver.bodies()] == ["firing", "resolved", "firing"]
