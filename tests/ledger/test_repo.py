"""The repository on SQLite and PostgreSQL: findings fold into incidents, the signal and the
operator move them through the lifecycle, and an open incident is never duplicated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from detectors.state import Signal
from ledger import queries
from ledger.db import open_ledger, read_session, write_session
from ledger.errors import NotFound, TransitionRefused
from ledger.lifecycle import OPEN_STATES
from ledger.repo import incidents, silences
from ledger.tables import Finding, Incident, TargetState
from policies.schema import HttpTarget
from probes.context import failed, observe
from probes.cycle import record

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Time for one test: each probe run and operator action is 30 s after the last."""

    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


class Probe:
    """Feeds one target's observations through the probe cycle, as the worker would."""

    def __init__(self, engine, clock: Clock, name: str = "checkout-api", service: str = "shop",
                 severity: str = "critical", failure_threshold: int = 3, success_threshold: int = 2):
        self.engine = engine
        self.clock = clock
        self.target = HttpTarget(
            kind="http", name=name, service=service, severity=severity, url=f"http://127.0.0.1:9/{name}",
            conditions=["[STATUS] == 200"], failure_threshold=failure_threshold,
            success_threshold=success_threshold,
        )

    def fail(self, times: int = 1) -> list[Signal]:
        return [self._record(observe(self.target, self.clock.tick(), 12.5, {"STATUS": 503}, status=503))
                for _ in range(times)]

    def refused(self) -> Signal:
        return self._record(failed(self.target, self.clock.tick(), 0.4, "cannot connect: connection refused"))

    def ok(self, times: int = 1) -> list[Signal]:
        return [self._record(observe(self.target, self.clock.tick(), 8.0, {"STATUS": 200}, status=200))
                for _ in range(times)]

    def _record(self, result) -> Signal:
        return record(self.engine, self.target, result, now=lambda: result.observation.started_at).signal


def operator(engine, clock: Clock, incident_id: int, to_state: str, actor: str = "alice",
             reason: str | None = None) -> None:
    with write_session(engine) as session:
        incidents.transition(session, incident_id, to_state, actor, reason, clock.tick())


def only_incident(engine) -> queries.IncidentSummary:
    [incident] = queries.list_incidents(engine)
    return incident


def transitions(engine, incident_id: int) -> list[tuple[str, str | None, str | None, str]]:
    return [(t.actor, t.from_state, t.to_state, t.message)
            for t in queries.incident_detail(engine, incident_id).timeline if t.kind == "transition"]


def target_state(engine, name: str = "checkout-api") -> TargetState:
    with read_session(engine) as session:
        return session.get(TargetState, name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reopen(ledger_url):
    """Open another engine on the test's ledger, as a restarted worker would; disposed after."""
    engines = []

    def open_again():
        engines.append(open_ledger(ledger_url))
        return engines[-1]

    yield open_again
    for engine in engines:
        engine.dispose()


def test_a_finding_opens_an_incident_with_timeline_and_evidence(engine, clock):
    probe = Probe(engine, clock)
    assert probe.fail(2) == [Signal.NONE, Signal.NONE]
    assert queries.list_incidents(engine) == []

    assert probe.refused() is Signal.FIRING
    incident = only_incident(engine)
    title = "checkout-api failing: cannot connect: connection refused"
    assert (incident.title, incident.state, incident.severity, incident.service) == (title, "observed", "critical", "shop")
    assert incident.correlation_key == "shop/checkout-api"
    assert incident.finding_count == 1
    assert incident.opened_at == incident.last_seen_at == clock.now
    assert incident.resolved_at is None

    detail = queries.incident_detail(engine, incident.id)
    [finding] = detail.findings
    assert (finding.rule, finding.target, finding.occurrences, finding.recovered_at) == ("probe:http", "checkout-api", 3, None)
    assert [(t.actor, t.kind, t.to_state, t.message) for t in detail.timeline] == [
        ("workbench", "transition", "observed", f"opened: {title}"),
        ("workbench", "finding", None, f"finding #{finding.id} folded in: {title}"),
    ]
    # The evidence is the failure streak that made it fire, each with its checks and actual values.
    assert [e.summary for e in detail.evidence] == [
        "http probe of checkout-api failed: [STATUS] == 200 -> got 503",
        "http probe of checkout-api failed: [STATUS] == 200 -> got 503",
        "http probe of checkout-api failed: cannot connect: connection refused",
    ]
    assert {e.finding_id for e in detail.evidence} == {finding.id}
    assert detail.evidence[0].checks == [
        {"condition": "[STATUS] == 200", "ok": False, "actual": "503", "text": "[STATUS] == 200 -> got 503"}
    ]
    assert detail.evidence[0].data["status"] == 503
    assert [o.ok for o in detail.recent_observations] == [False, False, False]


def test_a_second_finding_with_the_same_key_folds_into_the_open_incident(engine, clock):
    first_at, second_at = clock.tick(), clock.tick()
    specs = [
        incidents.FindingSpec(rule=rule, target=target, service="shop", severity="warning",
                         summary=f"{target} is down", correlation_key="shop/payments")
        for rule, target in [("probe:http", "payments-api"), ("probe:host", "payments-host")]
    ]
    with write_session(engine) as session:
        first = incidents.open_finding(session, specs[0], [], first_at)
    with write_session(engine) as session:
        second = incidents.open_finding(session, specs[1], [], second_at)

    incident = only_incident(engine)
    assert incident.finding_count == 2
    assert incident.opened_at == first_at
    assert incident.last_seen_at == incident.updated_at == second_at
    assert first.incident_id == second.incident_id == incident.id
    detail = queries.incident_detail(engine, incident.id)
    assert [f.target for f in detail.findings] == ["payments-api", "payments-host"]
    assert [t.message for t in detail.timeline if t.kind == "finding"] == [
        f"finding #{first.id} folded in: payments-api is down",
        f"finding #{second.id} folded in: payments-host is down",
    ]


def test_severity_is_the_worst_firing_finding_and_each_change_is_on_the_timeline(engine, clock):
    def spec(target: str, severity: str) -> incidents.FindingSpec:
        return incidents.FindingSpec(rule="probe:http", target=target, service="shop", severity=severity,
                                     summary=f"{target} is down", correlation_key="shop/payments")

    with write_session(engine) as session:
        incidents.open_finding(session, spec("payments-api", "warning"), [], clock.tick())
    assert only_incident(engine).severity == "warning"
    with write_session(engine) as session:
        critical = incidents.open_finding(session, spec("payments-db", "critical"), [], clock.tick())
    incident = only_incident(engine)
    assert incident.severity == "critical"
    with write_session(engine) as session:  # an info finding changes nothing
        incidents.open_finding(session, spec("payments-cache", "info"), [], clock.tick())
    assert only_incident(engine).severity == "critical"
    with write_session(engine) as session:
        incidents.close_finding(session, session.get(Finding, critical.id), clock.tick(), "recovered", "recovered")

    assert only_incident(engine).severity == "warning"
    changes = [t.message for t in queries.incident_detail(engine, incident.id).timeline if t.kind == "severity"]
    assert changes == [
        f"severity rose from warning to critical: finding #{critical.id} is critical: payments-db is down",
        f"severity fell from critical to warning: the worst finding still firing, #{critical.id - 1}, is warning",
    ]


def test_a_finding_released_when_its_silence_ends_brings_its_latest_failures_as_evidence(engine, clock):
    with write_session(engine) as session:
        silence = silences.add_silence(session, matchers=[{"label": "service", "op": "=", "value": "shop"}],
                                       starts_at=T0, ends_at=None, author="alice", comment="deploy", now=T0)
    probe = Probe(engine, clock)
    probe.fail(3)  # fires while silenced
    probe.refused()
    assert queries.list_incidents(engine) == []
    with write_session(engine) as session:
        silences.expire_silence(session, silence.id, "alice", clock.tick())
    with write_session(engine) as session:
        assert incidents.release_suppressed(session, clock.tick()) == 1

    detail = queries.incident_detail(engine, only_incident(engine).id)
    assert [e.summary for e in detail.evidence] == [
        "http probe of checkout-api failed: [STATUS] == 200 -> got 503",
        "http probe of checkout-api failed: cannot connect: connection refused",
    ]
    assert {e.finding_id for e in detail.evidence} == {detail.findings[0].id}


def test_a_rule_finding_released_from_a_silence_gets_its_evidence_at_the_next_evaluation(engine, clock):
    spec = incidents.FindingSpec(rule="rule:shop-errors", target="shop-errors", service="shop",
                                 severity="warning", summary="error ratio 0.2 > 0.05", correlation_key="shop/errors")
    seen = incidents.RuleEvidence(summary="error ratio over 1m was 0.2 (> 0.05)", data={"value": 0.2}, at=T0)
    with write_session(engine) as session:
        silence = silences.add_silence(session, matchers=[{"label": "service", "op": "=", "value": "shop"}],
                                       starts_at=T0, ends_at=None, author="alice", comment="deploy", now=T0)
        finding = incidents.open_finding(session, spec, [seen], clock.tick())
        silences.expire_silence(session, silence.id, "alice", clock.tick())
        incidents.release_suppressed(session, clock.tick())
    assert queries.incident_detail(engine, only_incident(engine).id).evidence == []
    for _ in range(2):  # the next evaluations: one piece of evidence, not one per evaluation
        with write_session(engine) as session:
            incidents.finding_failed_again(session, finding.id, seen, clock.tick())
    [evidence] = queries.incident_detail(engine, only_incident(engine).id).evidence
    assert (evidence.kind, evidence.summary, evidence.finding_id) == ("rule", seen.summary, finding.id)


def test_a_finding_after_the_incident_resolved_opens_a_new_incident(engine, clock):
    probe = Probe(engine, clock)
    probe.fail(3)
    probe.ok(2)
    [resolved] = queries.list_incidents(engine)
    assert resolved.state == "resolved"

    assert probe.fail(3)[-1] is Signal.FIRING
    reopened, old = queries.list_incidents(engine)  # open incidents come first
    assert old.id == resolved.id
    assert (old.state, old.finding_count) == ("resolved", 1)
    assert reopened.id != resolved.id
    assert (reopened.state, reopened.finding_count, reopened.resolved_at) == ("observed", 1, None)
    assert reopened.correlation_key == old.correlation_key


def test_recovery_resolves_only_after_the_success_threshold(engine, clock):
    probe = Probe(engine, clock, success_threshold=3)
    probe.fail(3)
    incident_id = only_incident(engine).id

    assert probe.ok() == [Signal.RECOVERING]
    assert only_incident(engine).state == "recovering"
    assert probe.ok() == [Signal.NONE]
    assert (only_incident(engine).state, only_incident(engine).resolved_at) == ("recovering", None)

    assert probe.ok() == [Signal.RECOVERED]
    incident = only_incident(engine)
    assert (incident.state, incident.resolved_at) == ("resolved", clock.now)
    assert transitions(engine, incident_id)[1:] == [
        ("workbench", "observed", "recovering", "signal recovered; resolves after 3 successes in a row"),
        ("workbench", "recovering", "resolved", "success threshold held (3 in a row)"),
    ]
    detail = queries.incident_detail(engine, incident_id)
    assert [f.recovered_at for f in detail.findings] == [clock.now]
    assert [t.message for t in detail.timeline if t.kind == "recovery"] == [
        f"finding #{detail.findings[0].id} recovered: 3 successes in a row"
    ]
    assert target_state(engine).active_finding_id is None
    assert sum(queries.open_incident_counts(engine).values()) == 0


@pytest.mark.parametrize("operator_state", [None, "triaged", "contained", "escalated"])
def test_a_relapse_while_recovering_returns_to_the_previous_state(engine, clock, operator_state):
    probe = Probe(engine, clock)
    probe.fail(3)
    incident_id = only_incident(engine).id
    if operator_state:
        operator(engine, clock, incident_id, operator_state)
    before = operator_state or "observed"

    assert probe.ok() == [Signal.RECOVERING]
    assert probe.fail() == [Signal.STILL_FIRING]
    incident = only_incident(engine)
    assert (incident.id, incident.state, incident.finding_count) == (incident_id, before, 1)
    assert transitions(engine, incident_id)[-2:] == [
        ("workbench", before, "recovering", "signal recovered; resolves after 2 successes in a row"),
        ("workbench", "recovering", before, "signal failed again while recovering"),
    ]

    assert probe.ok(2) == [Signal.RECOVERING, Signal.RECOVERED]
    assert only_incident(engine).state == "resolved"


def test_operator_transitions_are_recorded_with_actor_and_reason(engine, clock):
    Probe(engine, clock).fail(3)
    incident_id = only_incident(engine).id

    operator(engine, clock, incident_id, "triaged", actor="alice", reason="  looking at the deploy  ")
    operator(engine, clock, incident_id, "escalated", actor="bob")
    with pytest.raises(TransitionRefused, match="going to suppressed needs a reason"):
        operator(engine, clock, incident_id, "suppressed", actor="bob", reason=" ")
    with pytest.raises(TransitionRefused, match="entered automatically"):
        operator(engine, clock, incident_id, "recovering", actor="bob", reason="it looks better")
    operator(engine, clock, incident_id, "resolved", actor="alice", reason="rolled back the deploy")

    assert transitions(engine, incident_id) == [
        ("workbench", None, "observed", "opened: checkout-api failing: [STATUS] == 200 -> got 503"),
        ("alice", "observed", "triaged", "looking at the deploy"),
        ("bob", "triaged", "escalated", "marked escalated"),
        ("alice", "escalated", "resolved", "rolled back the deploy"),
    ]
    incident = only_incident(engine)
    assert (incident.state, incident.resolved_at, incident.updated_at) == ("resolved", clock.now, clock.now)
    with pytest.raises(TransitionRefused, match="cannot go from resolved to triaged"):
        operator(engine, clock, incident_id, "triaged", reason="reopen")
    with pytest.raises(NotFound, match="no incident with id 999"):
        operator(engine, clock, 999, "triaged")


def test_a_manual_resolve_while_still_failing_then_more_failures_open_a_new_incident(engine, clock):
    probe = Probe(engine, clock)
    probe.fail(3)
    first = only_incident(engine)
    operator(engine, clock, first.id, "resolved", reason="fixed, I think")

    assert [f.recovered_at is not None for f in queries.incident_detail(engine, first.id).findings] == [True]
    state = target_state(engine)
    assert (state.active_finding_id, state.consecutive_failures) == (None, 0)

    assert probe.fail(2) == [Signal.NONE, Signal.NONE]
    assert only_incident(engine).id == first.id
    assert probe.fail() == [Signal.FIRING]
    second, old = queries.list_incidents(engine)
    assert (old.id, old.state, old.finding_count) == (first.id, "resolved", 1)
    assert (second.state, second.finding_count, second.opened_at) == ("observed", 1, clock.now)


def test_repeats_never_duplicate_the_open_incident_even_across_a_restart(engine, reopen, clock):
    probe = Probe(engine, clock)
    assert probe.fail(2) == [Signal.NONE, Signal.NONE]

    engine.dispose()
    probe.engine = reopen()
    assert probe.fail() == [Signal.FIRING], "the failure count survives a restart"
    assert probe.fail(4) == [Signal.STILL_FIRING] * 4

    probe.engine.dispose()
    probe.engine = reopen()
    assert probe.fail(4) == [Signal.STILL_FIRING] * 4

    incident = only_incident(probe.engine)
    assert (incident.state, incident.finding_count, incident.last_seen_at) == ("observed", 1, clock.now)
    [finding] = queries.incident_detail(probe.engine, incident.id).findings
    assert finding.occurrences == 3 + 4 + 4
    assert queries.open_incident_counts(probe.engine)["observed"] == 1


def incident_row(key: str, resolved_at: datetime | None = None) -> Incident:
    return Incident(title="t", state="resolved" if resolved_at else "observed", severity="warning",
                    service="shop", correlation_key=key, opened_at=T0, updated_at=T0, last_seen_at=T0,
                    resolved_at=resolved_at)


def test_the_database_allows_one_open_incident_per_key(engine):
    with write_session(engine) as session:
        session.add_all([incident_row("shop/a", resolved_at=T0), incident_row("shop/a", resolved_at=T0),
                         incident_row("shop/a"), incident_row("shop/b")])

    with pytest.raises(IntegrityError, match="uq_incident_open_key|UNIQUE constraint failed"):
        with write_session(engine) as session:
            session.add(incident_row("shop/a"))
    assert [i.correlation_key for i in queries.list_incidents(engine, states=["observed"])] == ["shop/b", "shop/a"]  # ties: newest first


def test_list_incidents_filters_by_state_severity_and_service(engine, clock):
    checkout = Probe(engine, clock, name="checkout-api", service="shop", severity="critical")
    cart = Probe(engine, clock, name="cart", service="shop", severity="warning")
    search = Probe(engine, clock, name="search", service="catalog", severity="warning")
    for probe in (checkout, cart, search):
        probe.fail(3)
    checkout.ok(2)

    def titles(**filters) -> list[str]:
        return [i.title.split()[0] for i in queries.list_incidents(engine, **filters)]

    assert titles() == ["search", "cart", "checkout-api"]  # open first, most recently updated first
    assert titles(states=["resolved"]) == ["checkout-api"]
    assert titles(states=list(OPEN_STATES)) == ["search", "cart"]
    assert titles(severities=["critical"]) == ["checkout-api"]
    assert titles(services=["shop"]) == ["cart", "checkout-api"]
    assert titles(services=["shop"], severities=["warning"], states=["observed"]) == ["cart"]
    assert titles(services=["billing"]) == []
    assert titles(limit=1) == ["search"]
    assert queries.services(engine) == ["catalog", "shop"]


def test_open_incident_counts_cover_every_open_state(engine, clock):
    assert queries.open_incident_counts(engine) == dict.fromkeys(OPEN_STATES, 0)

    probes = [Probe(engine, clock, name=name) for name in ("a", "b", "c", "d", "e")]
    for probe in probes:
        probe.fail(3)
    ids = {i.title.split()[0]: i.id for i in queries.list_incidents(engine)}
    operator(engine, clock, ids["b"], "triaged")
    operator(engine, clock, ids["c"], "triaged")
    operator(engine, clock, ids["d"], "suppressed", reason="planned maintenance")
    probes[4].ok(2)

    assert queries.open_incident_counts(engine) == {
        **dict.fromkeys(OPEN_STATES, 0), "observed": 1, "triaged": 2, "suppressed": 1,
    }


def test_incident_detail_of_a_missing_incident_is_not_found(engine):
    with pytest.raises(NotFound, match="no incident with id 42"):
        queries.incident_detail(engine, 42)
