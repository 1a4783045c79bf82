"""Secrets in the ledger, on SQLite and PostgreSQL: the repository masks what it keeps from
outside (alerts, payloads, findings, evidence, timeline, silence comments, hypothesis runs,
routing decisions, action requests), the secret values its engine knows in every encoding and secret shapes
whatever it knows; the queries mask rows an older release kept unmasked on the way out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import SQLModel, select

from ledger import queries
from ledger.db import read_session, with_secrets, write_session
from ledger.repo import actions, alerts, hypotheses, incidents, silences
from ledger.tables import (
    ActionRequest,
    Evidence,
    Finding,
    HypothesisRun,
    Incident,
    Observation,
    RoutingDecision,
    Silence,
    TimelineEntry,
)
from policies.secrets import encodings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "pr0be-T0ken/with+chars=9f"  # a value the policy references
SHAPED = ("postgres://admin:S3cretPw@db/x", "token=abcd1234efgh", "sk_live_4eC39HqLyjWDarjtT1zdp7dc")
SHAPE_SECRETS = ("S3cretPw", "abcd1234efgh", "4eC39HqLyjWDarjtT1zdp7dc")


def hostile(where: str) -> str:
    """Text from outside carrying the known secret in every encoding and secret-shaped strings."""
    return f"{where}: " + " | ".join([*sorted(encodings([SECRET])), *SHAPED])


def leaks(text: str) -> list[str]:
    return [form for form in [*encodings([SECRET]), *SHAPE_SECRETS] if form in text]


def everything_kept(engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        return "\n".join(str(row) for table in SQLModel.metadata.sorted_tables for row in conn.execute(select(table)))


def test_the_repository_masks_what_it_keeps_from_outside(engine):
    masking = with_secrets(engine, lambda: {SECRET})
    event = alerts.AlertEvent(
        source="alertmanager-webhook", fingerprint="f1", status="firing", starts_at=NOW, ends_at=None,
        labels={"alertname": "DbDown", "service": "db", "dsn": hostile("label"), hostile("name"): "x"},
        annotations={"summary": hostile("summary")}, generator_url=f"http://prom/graph?{hostile('url')}",
        raw={"labels": {"dsn": hostile("raw")}, "nested": [{"deep": hostile("raw list")}]})
    with write_session(masking) as session:
        assert alerts.record_alert(session, event, NOW) == "new"
        alerts.add_ingest_payloads(session, "alertmanager-webhook", [(hostile("body"), hostile("reason"), 0)], NOW)
        finding = incidents.open_finding(session, incidents.FindingSpec(
            rule="rule:db-errors", target="db", service="db", severity="critical", summary=hostile("rule summary"),
            correlation_key="db/rule:db-errors", labels={"instance": hostile("series label")}),
            [incidents.RuleEvidence(hostile("rule evidence"), {"series": [{"labels": {"dsn": hostile("data")}}]},
                                    NOW)], NOW)
        incident_id = finding.incident_id
        incidents.add_incident_note(session, incident_id, "alice", hostile("note"), NOW)
        silences.add_silence(session, matchers=[{"name": "alertname", "value": "Other"}], starts_at=NOW,
                             ends_at=NOW + timedelta(hours=1), author="alice", comment=hostile("comment"), now=NOW)
        request = actions.add_action_request(session, ActionRequest(
            incident_id=incident_id, action="hook", parameters={"key": "${HOOK_SECRET}", "user": hostile("param")},
            risk="containment", runner="webhook", plan=hostile("plan"), needs_approval=True, status="pending",
            reason=hostile("reason"), proposed_by="bob", proposed_at=NOW, expires_at=NOW + timedelta(hours=1),
            gate=[{"check": "parameters", "ok": False, "detail": hostile("gate")}]), hostile("proposed"))
        actions.update_action_request(session, request, "workbench", NOW, hostile("ran"), status="failed",
                                      output=hostile("output"), decision_reason=hostile("decision"))
        decision = hypotheses.add_routing_decision(session, RoutingDecision(
            at=NOW, task="hypothesis", incident_id=incident_id, route=["local"], reason="error",
            detail=hostile("detail"), attempts=[{"provider": "local", "detail": hostile("attempt")}]))
        run = hypotheses.request_refinement(session, incident_id, "alice", NOW)
        hypotheses.start_refinement(session, run.id, "key", {"evidence": [{"summary": hostile("draft")}]}, NOW)
        hypotheses.finish_refinement(session, run.id, NOW, refinement={"hypotheses": [{"why": hostile("model")}]},
                                     reason=hostile("why"), decision_id=decision.id)

    kept = everything_kept(engine)
    assert leaks(kept) == []
    assert "${HOOK_SECRET}" in kept, "a secret parameter stays its reference"
    assert "postgres://admin:***@db/x" in kept and "token=***" in kept and "summary: ***" in kept
    with read_session(engine) as session:
        alert = session.exec(select(Finding).where(Finding.rule == "alert:DbDown")).one()
        assert alert.labels["dsn"].startswith("label: ***")


def test_secret_shapes_are_masked_whatever_the_engine_knows(engine):
    with write_session(engine) as session:
        finding = incidents.open_finding(session, incidents.FindingSpec(
            rule="rule:x", target="db", service="db", severity="warning", summary=hostile("summary"),
            correlation_key="db/x"), [], NOW)
        incidents.add_incident_note(session, finding.incident_id, "alice", hostile("note"), NOW)
    kept = everything_kept(engine)
    assert [leak for leak in leaks(kept) if leak in SHAPE_SECRETS] == []
    assert SECRET in kept, "unknown to this engine, the value itself stays"


def test_queries_mask_rows_an_older_release_kept_unmasked(engine):
    with write_session(engine) as session:  # rows as an older release wrote them, straight to the tables
        incident = Incident(title=hostile("title"), state="observed", severity="critical", service=hostile("service"),
                            correlation_key="db/x", opened_at=NOW, updated_at=NOW, last_seen_at=NOW, finding_count=1)
        session.add(incident)
        session.flush()
        finding = Finding(rule="alert:DbDown", target="db", service="db", severity="critical",
                          summary=hostile("finding"), correlation_key="db/x", first_seen=NOW, last_seen=NOW,
                          incident_id=incident.id, labels={"dsn": hostile("label")}, suppressed_by=hostile("why"))
        session.add(finding)
        session.flush()
        session.add_all([
            TimelineEntry(incident_id=incident.id, at=NOW, actor="workbench", kind="note", message=hostile("timeline")),
            Evidence(incident_id=incident.id, finding_id=finding.id, at=NOW, kind="alert", summary=hostile("evidence"),
                     data={"labels": {"dsn": hostile("data")}, "checks": [{"text": hostile("check")}]}),
            Observation(target="db", kind="http", service="db", ok=False, started_at=NOW, duration_ms=1.0,
                        error=hostile("error"), checks=[{"actual": hostile("actual")}]),
            Silence(matchers=[{"name": "dsn", "value": hostile("matcher")}], starts_at=NOW, author="alice",
                    comment=hostile("comment"), created_at=NOW),
        ])
        decision = RoutingDecision(at=NOW, task="hypothesis", incident_id=incident.id, reason="error",
                                   detail=hostile("detail"), attempts=[{"detail": hostile("attempt")}])
        session.add(decision)
        session.flush()
        session.add_all([
            HypothesisRun(incident_id=incident.id, status="failed", requested_by="alice", requested_at=NOW,
                          draft={"evidence": [{"summary": hostile("draft")}]}, reason=hostile("reason"),
                          decision_id=decision.id),
            ActionRequest(incident_id=incident.id, action="hook", parameters={"url": hostile("param")},
                          risk="containment", runner="webhook", plan=hostile("plan"), needs_approval=True,
                          status="failed", reason=hostile("reason"), proposed_by="bob", proposed_at=NOW,
                          expires_at=NOW, output=hostile("output")),
        ])
    assert len(leaks(everything_kept(engine))) > 0, "the rows hold secrets"

    masking = with_secrets(engine, lambda: {SECRET})
    shown = [
        queries.list_incidents(masking), queries.incident_detail(masking, incident.id), queries.services(masking),
        queries.list_silences(masking, NOW), queries.suppressed_findings(masking),
        queries.finding_labels(masking, incident.id), queries.incidents_in_window(masking, NOW, NOW),
        queries.recent_observations(masking, "db"), queries.routing_decisions(masking),
        queries.routing_decision(masking, decision.id), queries.latest_hypothesis_runs(masking, [incident.id]),
        queries.list_action_requests(masking), queries.action_request(masking, 1),
    ]
    text = repr(shown)
    assert leaks(text) == []
    assert "postgres://admin:***@db/x" in text and "label: ***" in text
