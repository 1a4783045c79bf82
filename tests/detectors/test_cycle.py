"""Detector cycles against a real samples store and the real ledger (SQLite and PostgreSQL):
rules open and resolve incidents with their evidence; pending, silences, maintenance windows,
parent outages and flapping shape what the operator sees; state survives a restart."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter
from sqlmodel import select

from detectors.cycle import load_windows, run_rules
from ledger import queries
from ledger.db import read_session, write_session
from ledger.repo import silences
from ledger.samples import Sample, SampleStore
from ledger.silences import recurrence
from ledger.tables import Finding, RuleState
from policies.loader import load_policy
from policies.rules import Rule
from probes.context import failed, observe
from probes.cycle import record

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULE = TypeAdapter(Rule)
WEB = {"service": "shop", "target": "web", "kind": "http"}
TARGETS = """
targets:
  - {name: db-host, kind: tcp, service: db, host: 127.0.0.1, port: 9, failure_threshold: 1, success_threshold: 1}
  - {name: web, kind: http, service: shop, url: "http://127.0.0.1:9/", parent: db-host}
"""
RULES = """
rules:
  - name: shop-latency
    kind: latency
    service: shop
    percentile: 50
    above: 0.5
    window: 1m
    {extra}
"""


@pytest.fixture
def setup(tmp_path, policy_dir, engine):
    def make(extra: str = "", rules: str = RULES):
        directory = policy_dir(TARGETS)
        (directory / "rules.yaml").write_text(rules.format(extra=extra))
        return load_policy(directory), SampleStore(tmp_path / "samples")
    return make


def latency(store: SampleStore, value: float, at: datetime, labels=WEB) -> None:
    store.append([Sample("probe_duration_seconds", labels, value, at - timedelta(seconds=s)) for s in (5, 15, 25)])
    store.flush()


def open_titles(engine) -> list[str]:
    return [i.title for i in queries.list_incidents(engine) if i.resolved_at is None]


def test_a_latency_rule_opens_an_incident_with_its_evidence_and_resolves_it(setup, engine):
    policy, store = setup()
    latency(store, 0.9, T0)
    outcome = run_rules(engine, store, policy, T0)
    assert outcome.signals == {"firing": 1}
    [incident] = queries.list_incidents(engine)
    assert incident.title == "shop-latency (service=shop): p50 over the last 1m was 0.9 s (> 0.5 s)"
    assert incident.correlation_key == "shop/shop-latency" and incident.service == "shop"
    [evidence] = queries.incident_detail(engine, incident.id).evidence
    assert evidence.kind == "rule"
    assert evidence.data["query"] == 'probe_duration_seconds{service="shop", kind!="host"}'
    assert (evidence.data["threshold"], evidence.data["window"]) == (0.5, "1m")
    assert [v for _, v in evidence.data["points"]] == [0.9, 0.9, 0.9]

    later = T0 + timedelta(minutes=2)
    latency(store, 0.1, later)
    assert run_rules(engine, store, policy, later).signals == {"recovered": 1}
    assert queries.list_incidents(engine)[0].state == "resolved"


def test_the_evidence_says_when_the_condition_stops_holding_and_until_when_it_keeps_firing(setup, engine):
    policy, store = setup(extra="keep_firing_for: 1m")
    latency(store, 0.9, T0)
    run_rules(engine, store, policy, T0)
    later = T0 + timedelta(seconds=30)  # three fast runs and three slow ones in the window: p50 0.5
    latency(store, 0.1, later)
    assert run_rules(engine, store, policy, later).signals == {"recovering": 1}
    [incident] = queries.list_incidents(engine)
    held = queries.incident_detail(engine, incident.id).evidence[-1].summary
    assert held == ("shop-latency (service=shop): p50 over the last 1m was 0.5 s (> 0.5 s): no longer holds; "
                    "held by keep_firing_for (1m) until 12:01:00 UTC")
    end = T0 + timedelta(minutes=2)
    latency(store, 0.1, end)
    assert run_rules(engine, store, policy, end).signals == {"recovered": 1}
    assert queries.incident_detail(engine, incident.id).evidence[-1].summary.endswith(
        "was 0.1 s (> 0.5 s): no longer holds; recovered")


def test_pending_for_survives_a_restart(setup, engine):
    policy, store = setup(extra="for: 1m")
    latency(store, 0.9, T0)
    assert run_rules(engine, store, policy, T0).signals == {"none": 1}
    with read_session(engine) as session:
        [state] = session.exec(select(RuleState)).all()
        assert (state.state, state.pending_since) == ("pending", T0)
    assert open_titles(engine) == []
    # a new worker process: nothing in memory, only the ledger
    later = T0 + timedelta(seconds=70)
    latency(store, 0.9, later)
    assert run_rules(engine, store, policy, later).signals == {"firing": 1}
    assert len(open_titles(engine)) == 1


def test_a_silenced_rule_is_kept_and_marked_then_opens_an_incident_when_the_silence_ends(setup, engine):
    policy, store = setup()
    with write_session(engine) as session:
        silence = silences.add_silence(session, matchers=[{"label": "rule", "op": "=~", "value": "rule:shop-.*"}],
                                   starts_at=T0 - timedelta(minutes=1), ends_at=T0 + timedelta(minutes=5),
                                   author="ops", comment="deploy", now=T0)
    latency(store, 0.9, T0)
    run_rules(engine, store, policy, T0)
    assert open_titles(engine) == []
    with read_session(engine) as session:
        [finding] = session.exec(select(Finding)).all()
        assert finding.suppressed_by == f"silence #{silence.id}" and finding.incident_id is None
        assert finding.labels["category"] == "latency"

    after = T0 + timedelta(minutes=6)
    latency(store, 0.9, after)
    outcome = run_rules(engine, store, policy, after)
    assert outcome.released == 1
    [incident] = queries.list_incidents(engine)
    assert incident.state == "observed"
    assert "still firing after silence" in queries.incident_detail(engine, incident.id).timeline[-1].message


def test_a_maintenance_window_suppresses_only_inside_its_occurrence(setup, engine):
    policy, store = setup()
    with write_session(engine) as session:
        silences.add_silence(session, kind="maintenance", matchers=[{"label": "service", "op": "=", "value": "shop"}],
                         starts_at=T0 - timedelta(days=7), ends_at=None, author="ops", comment="nightly",
                         now=T0, recurrence=recurrence("daily", "11:30", timedelta(hours=1), "UTC"))
    latency(store, 0.9, T0)  # 12:00, inside 11:30-12:30
    run_rules(engine, store, policy, T0)
    assert open_titles(engine) == []
    outside = T0 + timedelta(minutes=45)  # 12:45
    latency(store, 0.9, outside)
    assert run_rules(engine, store, policy, outside).released == 1
    assert len(open_titles(engine)) == 1


def test_a_parent_outage_suppresses_its_children_until_it_resolves(setup, engine):
    policy, store = setup(extra="parent: db-host")
    db, web = policy.target("db-host"), policy.target("web")
    record(engine, db, failed(db, T0, 1.0, "cannot connect: connection refused"), now=lambda: T0)
    [parent] = queries.list_incidents(engine)

    # the child target fails three times: its finding is linked to the parent's incident
    for i in range(3):
        record(engine, web, failed(web, T0 + timedelta(seconds=i), 1.0, "cannot connect"), now=lambda: T0)
    latency(store, 0.9, T0)
    run_rules(engine, store, policy, T0)  # and so is the rule naming db-host as parent
    assert [i.id for i in queries.list_incidents(engine)] == [parent.id]
    detail = queries.incident_detail(engine, parent.id)
    assert sorted(f.suppressed_by or "" for f in detail.findings) == [
        "", f"parent incident #{parent.id} (db-host)", f"parent incident #{parent.id} (db-host)"]
    assert detail.finding_count == 1

    # the parent recovers; the children still fire: each opens its own incident
    later = T0 + timedelta(minutes=1)
    record(engine, db, observe(db, later, 1.0, {"CONNECTED": True}), now=lambda: later)
    assert sorted(open_titles(engine)) == ["shop-latency (service=shop): p50 over the last 1m was 0.9 s (> 0.5 s)",
                                           "web failing: cannot connect"]


def test_a_flapping_rule_is_held_open_and_says_so(setup, engine):
    policy, store = setup(rules=RULES + "noise: {{flap_limit: 2, flap_window: 10m}}\n")
    at = T0
    for value in (0.9, 0.1, 0.9, 0.1, 0.1):
        latency(store, value, at)
        run_rules(engine, store, policy, at)
        at += timedelta(minutes=1, seconds=5)
    incidents = queries.list_incidents(engine)
    assert len(incidents) == 2 and incidents[0].resolved_at is None  # the second episode is held open
    timeline = [t.message for t in queries.incident_detail(engine, incidents[0].id).timeline]
    assert any("is flapping (3 changes in 10m): held open until it settles" in m for m in timeline)


def test_a_rule_removed_from_the_policy_recovers_its_finding(setup, engine, policy_dir):
    policy, store = setup()
    latency(store, 0.9, T0)
    run_rules(engine, store, policy, T0)
    (policy_dir(TARGETS) / "rules.yaml").write_text("rules: []\n")
    run_rules(engine, store, load_policy(policy_dir(TARGETS)), T0 + timedelta(seconds=15))
    assert queries.list_incidents(engine)[0].state == "resolved"
    with read_session(engine) as session:
        assert session.exec(select(RuleState)).all() == []


def test_the_window_read_from_the_store_keeps_every_series_apart(tmp_path):
    store = SampleStore(tmp_path / "samples")
    store.append([Sample("probe_duration_seconds", {"service": f"svc-{i // 10}", "target": f"t-{i}"}, i,
                         T0 - timedelta(seconds=i % 50)) for i in range(3000)])
    store.flush()
    rule = RULE.validate_python({"name": "r", "kind": "saturation", "series": "probe_duration_seconds", "above": 1,
                                 "by": ["target"]})
    window, past = load_windows(store, [rule], T0)
    assert past is window and window.size == 3000 and len(window.series) == 3000
    values = {s.labels["target"]: window.values([s])[1].tolist() for s in window.series}
    assert values == {f"t-{i}": [float(i)] for i in range(3000)}


def test_one_failing_rule_is_logged_and_counted_and_the_others_are_evaluated(setup, engine, caplog):
    policy, store = setup(rules=RULES + """
  - {{name: shop-slow, kind: latency, service: shop, percentile: 50, above: 0.5, window: 1m}}
""")
    broken = policy.rules.rules[0].model_copy(update={"summary": "{window:.1f}"})  # what policy check refuses
    policy = policy.model_copy(update={"rules": policy.rules.model_copy(update={"rules": [broken,
                                                                                        policy.rules.rules[1]]})})
    latency(store, 0.9, T0)
    outcome = run_rules(engine, store, policy, T0)
    assert outcome.signals == {"error": 1, "firing": 1}
    assert [i.title for i in queries.list_incidents(engine)] == ["shop-slow (service=shop): p50 over the last 1m was 0.9 s (> 0.5 s)"]
    assert "rule shop-latency failed and is left out of this cycle: ValueError: Unknown format code 'f' for object " \
           "of type 'str'" in caplog.text
    with read_session(engine) as session:
        assert [row.rule for row in session.exec(select(RuleState)).all()] == ["shop-slow"]


def test_a_label_a_finding_lacks_renders_as_none(setup, engine):
    policy, store = setup(rules="""
rules:
  - {{name: db-gone, kind: absence, series: 'probe_success{{target="db"}}', summary: "{{labels[service]}} stopped"}}
""")
    assert run_rules(engine, store, policy, T0).signals == {"firing": 1}
    assert [i.title for i in queries.list_incidents(engine)] == ["none stopped"]

