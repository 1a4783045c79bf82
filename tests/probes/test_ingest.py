"""The alert envelope end to end on the ledger (SQLite and PostgreSQL): webhook deliveries,
duplicates, reordering, redelivery, bad payloads, and pulled alerts that stop being listed;
payloads committed together (group commit) fold as they would one by one."""

import copy
import json
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from ledger.db import open_ledger, read_session, sqlite_url, utcnow, write_session
from ledger.queries import incident_detail, list_incidents
from ledger.repo import alerts as alert_repo
from ledger.repo import incidents, silences
from ledger.tables import Alert, Evidence, Finding, Incident, IngestPayload, TimelineEntry
from policies.schema import AlertmanagerTarget
from probes.alerts import parse_api_alerts, parse_webhook
from probes.context import observe
from probes.cycle import record
from probes.ingest import authorized, ingest_alertmanager, ingest_batch
from tests.support import SAMPLES


def webhook(status="firing", fingerprint="9e0d2a5f628de785", starts="2026-11-22T12:49:18.251Z") -> dict:
    doc = json.loads((SAMPLES / "alertmanager-webhook.json").read_text())
    doc["status"] = status
    for alert in doc["alerts"]:
        alert.update(status=status, fingerprint=fingerprint, startsAt=starts)
        if status == "resolved":
            alert["endsAt"] = "2026-11-22T12:59:18.251Z"
    return doc


def send(engine, doc) -> tuple[int, dict]:
    result = ingest_alertmanager(engine, json.dumps(doc).encode() if not isinstance(doc, bytes) else doc)
    return result.status, result.body()


def test_firing_alert_opens_an_incident_and_resolved_recovers_it(engine):
    assert send(engine, webhook()) == (200, {"status": "accepted", "new": 1})
    incident = list_incidents(engine)[0]
    assert (incident.title, incident.severity, incident.service, incident.correlation_key) == (
        "BlackboxProbeFailed: HTTP probe of http://127.0.0.1:18081/ failed", "critical", "blackbox-http",
        "blackbox-http/alert:BlackboxProbeFailed")
    evidence = incident_detail(engine, incident.id).evidence
    assert evidence[0].kind == "alert" and evidence[0].data["labels"]["instance"] == "http://127.0.0.1:18081/"

    assert send(engine, webhook("resolved")) == (200, {"status": "accepted", "resolved": 1})
    assert list_incidents(engine)[0].state == "resolved"


def test_redelivery_is_a_duplicate_and_opens_nothing_more(engine):
    for _ in range(3):
        send(engine, webhook())
    incidents = list_incidents(engine)
    assert len(incidents) == 1 and incidents[0].finding_count == 1
    assert send(engine, webhook())[1] == {"status": "accepted", "duplicate": 1}


def test_resolved_before_firing_keeps_the_episode_resolved(engine):
    assert send(engine, webhook("resolved"))[1] == {"status": "accepted", "resolved": 1}
    assert send(engine, webhook("firing"))[1] == {"status": "accepted", "stale": 1}
    assert list_incidents(engine) == []


def test_a_new_episode_of_the_same_alert_opens_a_new_incident(engine):
    send(engine, webhook())
    send(engine, webhook("resolved"))
    send(engine, webhook(starts="2026-11-22T13:30:00Z"))
    assert [i.state for i in list_incidents(engine)] == ["observed", "resolved"]


def mistyped() -> dict:
    doc = webhook()
    doc["alerts"][0]["labels"]["severity"] = 5
    return doc


def missing_fingerprint() -> dict:
    doc = webhook()
    del doc["alerts"][0]["fingerprint"]
    return doc


@pytest.mark.parametrize("payload,reason", [
    (b"\xff\xfe{}", "body is not valid UTF-8 (byte 0)"),
    (b"{not json", "body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"[" * 100_000 + b"]" * 100_000, "body is not JSON: nested too deeply"),
    (b'{"version": "4", "x": "\\ud800"}', "body is not JSON: a lone UTF-16 surrogate (\\ud800-\\udfff) is not text"),
    (b'{"version": ' + b"4" * 5_000 + b"}", "body is not JSON: Exceeds the limit (4300 digits) for integer string "
                                             "conversion: value has 5000 digits"),
    ({**webhook(), "version": "3"}, "unsupported webhook payload version '3'; expected '4'"),
    (webhook(starts="0001-01-01T00:00:00+05:00"), "startsAt: 0001-01-01T00:00:00+05:00 has no time in UTC"),
    (mistyped(), "alerts.0.labels.severity: Input should be a valid string"),
    (missing_fingerprint(), "alerts.0.fingerprint: Field required"),
    ([1, 2], "(top level): Input should be a valid dictionary or instance of WebhookPayload"),
])
def test_bad_payloads_are_refused_with_one_line_and_kept(engine, payload, reason):
    status, body = send(engine, payload)
    assert (status, body) == (400, {"error": reason})
    with read_session(engine) as session:
        kept = session.exec(select(IngestPayload)).one()
    assert (kept.accepted, kept.reason) == (False, reason)
    assert send(engine, webhook())[0] == 200  # the next good payload is not affected


def test_kept_payloads_mask_secrets(engine):
    doc = webhook()
    doc["alerts"][0]["annotations"]["runbook"] = "curl -H 'Authorization: Bearer abcdef0123456789' ..."
    send(engine, doc)
    with read_session(engine) as session:
        body = session.exec(select(IngestPayload)).one().body
    assert "abcdef0123456789" not in body and "Bearer ***" in body


@pytest.mark.parametrize("header,token,ok", [
    (None, None, True), ("Bearer s3cret", "s3cret", True), ("bearer s3cret", "s3cret", True),
    (None, "s3cret", False), ("Bearer wrong", "s3cret", False), ("Basic s3cret", "s3cret", False),
])
def test_bearer_token(header, token, ok):
    assert authorized(header, token) is ok


def test_pulled_alerts_that_stop_being_listed_are_resolved(engine):
    target = AlertmanagerTarget(name="am", kind="alertmanager", service="alerting", url="http://127.0.0.1:9/")
    listed = parse_api_alerts(json.loads((SAMPLES / "alertmanager-v2-alerts.json").read_text()))
    start = utcnow()

    def pull(alerts, seconds):
        at = start + timedelta(seconds=seconds)
        result = observe(target, at, 3.0, {"ALERT_COUNT": len(alerts)}, alerts=alerts)
        return record(engine, target, result, now=lambda: at).alerts

    assert pull(listed, 0) == {"new": 2, "resolved": 0}
    assert pull(listed, 30) == {"duplicate": 2, "resolved": 0}
    assert pull(listed[:1], 60) == {"duplicate": 1, "resolved": 0}  # missing for 30 s: within the grace
    assert pull(listed[:1], 110) == {"duplicate": 1, "resolved": 0}
    assert pull(listed[:1], 121) == {"duplicate": 1, "resolved": 1}  # missing since 30 s + 90 s
    states = sorted(i.state for i in list_incidents(engine))
    assert states == ["observed", "resolved"]
    assert pull(copy.deepcopy(listed[:1]), 150) == {"duplicate": 1, "resolved": 0}


def test_a_failed_pull_resolves_nothing_but_a_failing_condition_does_not_stop_resolution(engine):
    target = AlertmanagerTarget(name="am", kind="alertmanager", service="alerting", url="http://127.0.0.1:9/",
                                conditions=["[ALERT_COUNT] == 0"])
    listed = parse_api_alerts(json.loads((SAMPLES / "alertmanager-v2-alerts.json").read_text()))
    start = utcnow()

    def pull(values, alerts, seconds, error=None):
        at = start + timedelta(seconds=seconds)
        return record(engine, target, observe(target, at, 3.0, values, alerts=alerts, error=error),
                      now=lambda: at).alerts

    assert pull({"ALERT_COUNT": 2}, listed, 0) == {"new": 2, "resolved": 0}
    assert pull({}, [], 200, error="cannot connect: connection refused") == {}
    assert pull({"ALERT_COUNT": 1}, listed[:1], 300) == {"duplicate": 1, "resolved": 1}


def event(fingerprint: str, alertname: str, status: str = "firing", starts: str = "2026-11-22T12:00:00Z"):
    doc = webhook(status, fingerprint, starts)
    doc["alerts"][0]["labels"]["alertname"] = alertname
    return parse_webhook(json.dumps(doc).encode())[0]


def snapshot(engine) -> dict:
    """Every row an alert writes, without the ids of timeline entries and evidence (a batch
    writes them in another interleaving across incidents; per incident the order is the same)."""
    def rows(table, order, drop=()):
        with read_session(engine) as session:
            found = session.exec(select(table).order_by(*order)).all()
        return [{k: v for k, v in row.model_dump().items() if k not in drop} for row in found]

    return {"alerts": rows(Alert, [Alert.fingerprint, Alert.starts_at], ["id"]), "findings": rows(Finding, [Finding.id]),
            "incidents": rows(Incident, [Incident.id]),
            "timeline": rows(TimelineEntry, [TimelineEntry.incident_id, TimelineEntry.id], ["id"]),
            "evidence": rows(Evidence, [Evidence.incident_id, Evidence.id], ["id"])}


@pytest.mark.parametrize("in_chunk", [alert_repo.IN_CHUNK, 2])
def test_a_batch_folds_alerts_as_they_would_one_by_one(engine, tmp_path, monkeypatch, in_chunk):
    """New, duplicate, stale, resolved and silenced alerts, repeats inside a batch (a redelivery
    and then the resolution of the same episode), a new alert relapsing a recovering incident and
    one opening a new incident after its key's resolved; the batch's reads in one query each, or
    in several (a batch with more alerts than a database takes query parameters)."""
    monkeypatch.setattr(alert_repo, "IN_CHUNK", in_chunk)
    batches = [
        [event("a", "K1"), event("b", "K1"), event("a", "K1"), event("c", "K2"), event("d", "K3", "resolved")],
        [event("e", "K2"), event("s", "Silenced"), event("a", "K1", "resolved"), event("g", "K4"), event("g", "K4"),
         event("b", "K1", "resolved")],
        [event("h", "K1"), event("a", "K1"), event("d", "K3"), event("i", "K1"), event("c", "K2"), event("c", "K2"),
         event("c", "K2", "resolved"), event("c", "K2"), event("j", "K5")],
    ]
    start = utcnow()

    def between(ledger, number):  # what happens in the ledger between batches, on both sides
        now = start + timedelta(seconds=number)
        with write_session(ledger) as session:
            if number == 1:
                silences.add_silence(session, matchers=[{"label": "alertname", "op": "=", "value": "Silenced"}],
                                 starts_at=start, ends_at=None, author="test", comment="quiet", now=now)
                c = session.exec(select(Alert).where(Alert.fingerprint == "c")).one()
                incidents.finding_recovering(session, c.finding_id, incidents.RuleEvidence("ok again", {}, now), now, "ok")

    one_by_one = open_ledger(sqlite_url(tmp_path / "one-by-one"))
    for number, batch in enumerate(batches):
        between(one_by_one, number)
        for alert in batch:
            with write_session(one_by_one) as session:
                alert_repo.record_alert(session, alert, start + timedelta(seconds=number))
    outcomes = []
    for number, batch in enumerate(batches):
        between(engine, number)
        with write_session(engine) as session:
            outcomes.append(alert_repo.record_alerts(session, batch, start + timedelta(seconds=number)))

    assert outcomes == [["new", "new", "duplicate", "new", "resolved"],
                        ["new", "new", "resolved", "new", "duplicate", "resolved"],
                        ["new", "stale", "stale", "new", "duplicate", "duplicate", "resolved", "stale", "new"]]
    assert snapshot(engine) == snapshot(one_by_one)
    opened = sorted((i.id, i.correlation_key.rsplit(":", 1)[1], i.state) for i in list_incidents(engine))
    assert opened == [(1, "K1", "resolved"), (2, "K2", "observed"), (3, "K4", "observed"), (4, "K1", "observed"),
                         (5, "K5", "observed")]  # the silenced alert's finding opened none


def test_a_bad_payload_in_a_batch_is_refused_alone(engine):
    good = [webhook(fingerprint=f"good{i}") for i in range(3)]
    bodies = [json.dumps(good[0]).encode(), b"{not json", json.dumps(good[1]).encode(), json.dumps(mistyped()).encode(),
              json.dumps(good[2]).encode(), json.dumps(good[2]).encode()]
    answers = [(r.status, r.body()) for r in ingest_batch(engine, bodies)]
    new, duplicate = {"status": "accepted", "new": 1}, {"status": "accepted", "duplicate": 1}
    assert answers == [(200, new), (400, {"error": "body is not JSON: Expecting property name enclosed in double "
                                                   "quotes at line 1 column 2"}),
                       (200, new), (400, {"error": "alerts.0.labels.severity: Input should be a valid string"}),
                       (200, new), (200, duplicate)]
    with read_session(engine) as session:
        kept = session.exec(select(IngestPayload).order_by(IngestPayload.id)).all()
    assert [p.accepted for p in kept] == [True, False, True, False, True, True]
    assert len(list_incidents(engine)) == 1 and list_incidents(engine)[0].finding_count == 3


def test_a_nul_character_is_refused_and_kept_masked(engine):
    doc = webhook()
    doc["alerts"][0]["labels"]["alertname"] = "nul\u0000here"
    assert send(engine, doc) == (400, {"error": "body holds a NUL character (\\u0000), which the ledger cannot store"})
    assert send(engine, b"\x00{")[0] == 400
    with read_session(engine) as session:
        assert [p.body for p in session.exec(select(IngestPayload).order_by(IngestPayload.id))][1] == "\ufffd{"


def test_the_text_of_a_nul_escape_is_no_nul(engine):
    doc = webhook()
    doc["alerts"][0]["annotations"]["description"] = "printf '\\u0000' wrote this"
    assert send(engine, doc) == (200, {"status": "accepted", "new": 1})
    with read_session(engine) as session:
        assert session.exec(select(Alert)).one().annotations["description"] == "printf '\\u0000' wrote this"


def test_an_end_without_an_offset_is_taken_as_utc(engine):
    doc = webhook(status="resolved")
    doc["alerts"][0]["endsAt"] = "2026-11-22T12:59:18"
    status, _ = send(engine, doc)
    with read_session(engine) as session:
        (alert,) = session.exec(select(Alert)).all()
    assert status == 200 and alert.ends_at.replace(tzinfo=None) == datetime(2026, 11, 22, 12, 59, 18)


def many_alerts(count: int) -> bytes:
    doc = webhook()
    (alert,) = doc["alerts"]
    doc["alerts"] = [dict(alert, fingerprint=f"big{i:05d}", labels=dict(alert["labels"], alertname=f"Big{i}"))
                     for i in range(count)]
    return json.dumps(doc).encode()


def test_a_large_payload_commits_in_bounded_transactions(engine):
    from sqlalchemy import event as sa_event
    commits = []
    sa_event.listen(engine, "commit", lambda conn: commits.append(1))
    assert ingest_alertmanager(engine, many_alerts(2_500)).body() == {"status": "accepted", "new": 2_500}
    with read_session(engine) as session:
        assert len(session.exec(select(Alert)).all()) == 2_500
        assert session.exec(select(IngestPayload)).one().alerts == 2_500
    assert len(commits) == 3  # 1,000 + 1,000 + 500 alerts


def test_a_large_payload_stopped_part_way_comes_back_as_duplicates(engine, monkeypatch):
    """The second transaction fails (as a worker killed there would not commit it): nothing was
    answered 2xx, the sender delivers again, and the first transaction's alerts are duplicates."""
    body, record = many_alerts(1_500), alert_repo.record_alerts

    def fail_second(session, events, now, origin="webhook"):
        if events[0].fingerprint == "big01000":
            raise RuntimeError("worker killed")
        return record(session, events, now, origin)

    monkeypatch.setattr(alert_repo, "record_alerts", fail_second)
    with pytest.raises(RuntimeError):
        ingest_alertmanager(engine, body)
    monkeypatch.setattr(alert_repo, "record_alerts", record)
    assert ingest_alertmanager(engine, body).body() == {"status": "accepted", "duplicate": 1_000, "new": 500}
    with read_session(engine) as session:
        assert len(session.exec(select(Alert)).all()) == 1_500
