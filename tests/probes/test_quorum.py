"""A target probed from several locations (probes/quorum.py), on SQLite and PostgreSQL: failing
from fewer than quorum locations opens the lower-severity finding, from a quorum the full one in
the same incident; the evidence names each location; well everywhere resolves it; a run recorded
twice (a bucket taken up again) is kept once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from ledger.db import read_session
from ledger.queries import incident_detail, list_incidents
from ledger.tables import Finding, Observation
from policies.schema import HttpTarget
from probes.context import failed, observe
from probes.cycle import Run, record

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SLOT = 1_772_366_400  # T0 in seconds since the epoch


def target(**fields) -> HttpTarget:
    return HttpTarget(kind="http", name="checkout", service="shop", url="http://127.0.0.1:9/", interval="60s",
                      failure_threshold=2, success_threshold=2, locations=["eu-1", "office"], **fields)


def run(engine, t: HttpTarget, location: str, slot: int, ok: bool):
    at = T0 + timedelta(minutes=slot)
    result = observe(t, at, 5.0, {"STATUS": 200}, status=200) if ok else failed(t, at, 5.0, "connection refused")
    return record(engine, t, result, now=lambda: at, run=Run(location, SLOT + 60 * slot))


def findings(engine) -> list[tuple[str, str, datetime | None]]:
    with read_session(engine) as session:
        return [(f.rule, f.severity, f.recovered_at) for f in session.exec(select(Finding).order_by(Finding.id))]


def test_one_location_failing_opens_the_lower_finding_both_the_full_one_in_the_same_incident(engine):
    t = target()
    for slot in range(2):
        run(engine, t, "eu-1", slot, ok=True)
        run(engine, t, "office", slot, ok=False)
    [incident] = list_incidents(engine)
    assert (incident.severity, incident.title) == (
        "info", "checkout unreachable from office (office: connection refused); well from eu-1")
    assert findings(engine) == [("probe:http:partial", "info", None)]

    for slot in range(2, 4):
        run(engine, t, "eu-1", slot, ok=False)
        run(engine, t, "office", slot, ok=False)
    [incident] = list_incidents(engine)
    assert incident.severity == "warning"
    assert incident.title == ("checkout failing from 2 of 2 locations (eu-1: connection refused; office: "
                              "connection refused)")
    assert [(rule, severity, recovered is None) for rule, severity, recovered in findings(engine)] == [
        ("probe:http:partial", "info", False), ("probe:http", "warning", True)]
    summaries = {e.summary for e in incident_detail(engine, incident.id).evidence}
    assert {"http probe of checkout failed from eu-1: connection refused",
            "http probe of checkout failed from office: connection refused"} <= summaries

    for slot in range(4, 6):
        run(engine, t, "eu-1", slot, ok=True)
        run(engine, t, "office", slot, ok=True)
    [incident] = list_incidents(engine)
    assert incident.state == "resolved"


def test_a_quorum_of_one_and_the_severity_the_policy_gives(engine):
    t = target(quorum=1, severity="critical")
    assert t.lower_severity == "warning" and target(partial_severity="warning").lower_severity == "warning"
    for slot in range(2):
        run(engine, t, "office", slot, ok=False)
    [incident] = list_incidents(engine)
    assert incident.severity == "critical" and "failing from 1 of 2 locations" in incident.title


def test_a_run_taken_up_twice_is_recorded_once(engine):
    t = target()
    assert not run(engine, t, "office", 0, ok=False).duplicate
    assert run(engine, t, "office", 0, ok=False).duplicate
    assert not run(engine, t, "eu-1", 0, ok=False).duplicate  # the same slot from another location
    with read_session(engine) as session:
        assert session.exec(select(func.count()).select_from(Observation)).one() == 2
    assert findings(engine) == []  # one failure from each location: below the threshold of 2
