"""One incident whole, as Polars frames: what it is, its timeline, findings, evidence (rule
queries and values as the ledger keeps them, redacted), alerts, hypotheses (the draft and each
refinement), action requests with their runs and verification, the silences that touched it,
its notifications and the routing of its model calls; and when it was detected, acknowledged,
contained and resolved.

    >>> from ledger import forensics
    >>> record = forensics.incident_record(engine, 12)
    >>> record.timeline.select("at", "kind", "to_state", "message")
    >>> forensics.milestones(record).select("milestone", "seconds")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import Engine

from ledger import notifications, queries
from ledger.db import utcnow
from ledger.forensics.frames import TIME, as_json, seconds, to_frame
from ledger.lifecycle import CONTAINED, RESOLVED
from ledger.silences import covers, occurrences

INCIDENT = {"id": pl.Int64, "title": pl.String, "state": pl.String, "severity": pl.String, "service": pl.String,
            "correlation_key": pl.String, "opened_at": TIME, "updated_at": TIME, "last_seen_at": TIME,
            "resolved_at": TIME, "finding_count": pl.Int64, "acknowledged_at": TIME, "acknowledged_by": pl.String,
            "seconds_to_acknowledge": pl.Float64, "seconds_to_resolve": pl.Float64}
TIMELINE = {"at": TIME, "actor": pl.String, "kind": pl.String, "from_state": pl.String, "to_state": pl.String,
            "message": pl.String}
FINDING = {"id": pl.Int64, "rule": pl.String, "target": pl.String, "severity": pl.String, "summary": pl.String,
           "first_seen": TIME, "last_seen": TIME, "occurrences": pl.Int64, "recovered_at": TIME,
           "suppressed_by": pl.String, "feedback": pl.String}
EVIDENCE = {"id": pl.Int64, "at": TIME, "kind": pl.String, "finding_id": pl.Int64, "summary": pl.String,
            "query": pl.String, "op": pl.String, "threshold": pl.Float64, "window": pl.String,
            "checks": pl.String, "data": pl.String}
ALERT = {"id": pl.Int64, "alertname": pl.String, "status": pl.String, "starts_at": TIME, "ends_at": TIME,
         "fingerprint": pl.String, "labels": pl.String, "annotations": pl.String, "origin": pl.String,
         "deliveries": pl.Int64, "finding_id": pl.Int64, "incident_id": pl.Int64}
HYPOTHESIS = {"run_id": pl.Int64, "stage": pl.String, "rank": pl.Int64, "hypothesis": pl.String, "title": pl.String,
              "confidence": pl.Float64, "source": pl.String, "explanation": pl.String, "evidence_ids": pl.String,
              "status": pl.String, "at": TIME}
ACTION = {"id": pl.Int64, "action": pl.String, "risk": pl.String, "runner": pl.String, "status": pl.String,
          "reason": pl.String, "proposed_by": pl.String, "proposed_at": TIME, "decided_by": pl.String,
          "decided_at": TIME, "decision_reason": pl.String, "started_at": TIME, "finished_at": TIME,
          "verification": pl.String, "plan": pl.String, "parameters": pl.String, "gate": pl.String,
          "output": pl.String}
SILENCE = {"id": pl.Int64, "kind": pl.String, "matchers": pl.String, "starts_at": TIME, "ends_at": TIME,
           "expired_at": TIME, "author": pl.String, "comment": pl.String, "covered_from": TIME, "covered_until": TIME}
NOTIFICATION = {"id": pl.Int64, "channel": pl.String, "category": pl.String, "status": pl.String,
                "attempts": pl.Int64, "at": TIME, "sent_at": TIME, "route": pl.String, "title": pl.String,
                "error": pl.String}
DECISION = {"id": pl.Int64, "at": TIME, "task": pl.String, "expected": pl.String, "actual": pl.String,
            "reason": pl.String, "detail": pl.String, "latency_ms": pl.Float64, "prompt_tokens": pl.Int64,
            "completion_tokens": pl.Int64, "tokens": pl.Int64, "cost": pl.Float64}
MILESTONE = {"milestone": pl.String, "at": TIME, "measure": pl.String, "seconds": pl.Float64}
EVIDENCE_FIELDS = ("query", "op", "threshold", "window")  # what a rule's evidence states, beside its values


@dataclass(frozen=True)
class IncidentRecord:
    """Everything the ledger holds about one incident, a frame each (see the module's schemas)."""

    incident: pl.DataFrame  # one row
    timeline: pl.DataFrame
    findings: pl.DataFrame
    evidence: pl.DataFrame
    alerts: pl.DataFrame
    hypotheses: pl.DataFrame
    actions: pl.DataFrame
    silences: pl.DataFrame
    notifications: pl.DataFrame
    decisions: pl.DataFrame

    @property
    def summary(self) -> dict:
        """The incident's one row as a dict (id, title, state, opened_at, ...)."""
        return self.incident.row(0, named=True)


def incidents(engine: Engine, limit: int = 100_000) -> pl.DataFrame:
    """Every incident (up to ``limit``, the most recently updated), by id.

    >>> forensics.incidents(engine).filter(pl.col("state") != "resolved")
    """
    return to_frame(queries.list_incidents(engine, limit=limit), INCIDENT).sort("id")


def incident(engine: Engine, incident_id: int) -> pl.DataFrame:
    """One incident as a one-row frame; ``ledger.errors.NotFound`` when there is none."""
    return to_frame([queries.incident_detail(engine, incident_id, observations=0)], INCIDENT)


def timeline(engine: Engine, incident_id: int) -> pl.DataFrame:
    """What happened to the incident, in order: findings, state changes, notes, actions."""
    return to_frame(queries.incident_detail(engine, incident_id, observations=0).timeline, TIMELINE)


def findings(engine: Engine, incident_id: int) -> pl.DataFrame:
    """The incident's findings (suppressed ones linked to it too), with the operator's verdict."""
    return to_frame(queries.incident_detail(engine, incident_id, observations=0).findings, FINDING)


def evidence(engine: Engine, incident_id: int) -> pl.DataFrame:
    """The incident's evidence as stored: a probe's checks with their values, a rule's query,
    operator, threshold and window; ``data`` is the whole of it as JSON (redacted as stored).

    >>> forensics.evidence(engine, 12).filter(pl.col("kind") == "rule").select("at", "query", "threshold")
    """
    items = queries.incident_detail(engine, incident_id, observations=0).evidence
    return to_frame([{**item.model_dump(), **_stated(item.data), "data": item.data} for item in items], EVIDENCE)


def _stated(data: dict) -> dict:
    """The rule fields of an evidence's data, the query as JSON text when it is a selector mapping."""
    stated = {name: data.get(name) for name in EVIDENCE_FIELDS}
    if isinstance(stated["query"], dict):
        stated["query"] = as_json(stated["query"])
    return stated


def alerts(engine: Engine, incident_id: int) -> pl.DataFrame:
    """The Alertmanager alert episodes folded into the incident."""
    return to_frame(queries.alerts(engine, incident_id=incident_id), ALERT)


def hypotheses(engine: Engine, incident_id: int) -> pl.DataFrame:
    """Every hypothesis of every refinement run, ranked: the draft the rules made (``stage``
    draft) and the model's refinement of it (``stage`` refinement), with the run's status.

    >>> forensics.hypotheses(engine, 12).filter(pl.col("rank") == 1)
    """
    rows = []
    for run in queries.hypothesis_runs(engine, incident_id):
        for stage, result in (("draft", run.draft), ("refinement", run.refinement)):
            for rank, hypothesis in enumerate((result or {}).get("hypotheses", []), start=1):
                rows.append({**hypothesis, "run_id": run.id, "stage": stage, "rank": rank,
                             "hypothesis": hypothesis["id"], "status": run.status,
                             "at": run.finished_at or run.started_at or run.requested_at})
    return to_frame(rows, HYPOTHESIS)


def actions(engine: Engine, incident_id: int) -> pl.DataFrame:
    """The action requests on the incident, oldest first: gate, decision, run and verification."""
    return to_frame(reversed(queries.list_action_requests(engine, incident_id=incident_id, limit=10_000)), ACTION)


def silences(engine: Engine, incident_id: int, now: datetime | None = None) -> pl.DataFrame:
    """Silences and maintenance windows whose matchers cover one of the incident's findings and
    that were in force while it was open (``covered_from``, ``covered_until``: the first span)."""
    detail = queries.incident_detail(engine, incident_id, observations=0)
    now = now or utcnow()
    labels = list(queries.finding_labels(engine, incident_id).values())
    rows = []
    for item in queries.list_silences(engine, now, include_expired=True):
        spans = occurrences(item, detail.opened_at, detail.resolved_at or now)
        if spans and any(covers(item, found) for found in labels):
            rows.append({**item.model_dump(), "covered_from": spans[0][0], "covered_until": spans[0][1]})
    return to_frame(sorted(rows, key=lambda row: row["id"]), SILENCE)


def incident_notifications(engine: Engine, incident_id: int) -> pl.DataFrame:
    """What was sent about the incident, oldest first: channel, category, delivery status."""
    return to_frame(reversed(notifications.list_notifications(engine, incident_id=incident_id, limit=10_000)),
                    NOTIFICATION)


def decisions(engine: Engine, incident_id: int) -> pl.DataFrame:
    """How the incident's model calls were routed: the provider expected and the one that served,
    why they differ, tokens, cost and latency; oldest first."""
    return to_frame(reversed(queries.routing_decisions(engine, incident_id=incident_id)), DECISION)


def incident_record(engine: Engine, incident_id: int, now: datetime | None = None) -> IncidentRecord:
    """The incident whole (``now``: until when an open incident's silences count)."""
    return IncidentRecord(
        incident=incident(engine, incident_id), timeline=timeline(engine, incident_id),
        findings=findings(engine, incident_id), evidence=evidence(engine, incident_id),
        alerts=alerts(engine, incident_id), hypotheses=hypotheses(engine, incident_id),
        actions=actions(engine, incident_id), silences=silences(engine, incident_id, now),
        notifications=incident_notifications(engine, incident_id), decisions=decisions(engine, incident_id),
    )


def milestones(record: IncidentRecord) -> pl.DataFrame:
    """When the incident began (its earliest evidence: the first failed probe run, the rule's
    firing), was detected (opened), acknowledged, contained and resolved; ``seconds`` is the
    time to detect (from the onset) and to acknowledge, contain and resolve (from detection).
    A milestone not reached has no time.

    >>> forensics.milestones(record).select("measure", "seconds")
    """
    summary = record.summary
    opened = summary["opened_at"]
    onset = min([opened, *record.evidence.filter(pl.col("finding_id").is_not_null())["at"]])
    contained = record.timeline.filter(pl.col("to_state") == CONTAINED)["at"].min()
    resolved = summary["resolved_at"] or record.timeline.filter(pl.col("to_state") == RESOLVED)["at"].min()
    rows = [("began", onset, None, None),
            ("detected", opened, "time to detect", seconds(opened, onset)),
            ("acknowledged", summary["acknowledged_at"], "time to acknowledge",
             seconds(summary["acknowledged_at"], opened)),
            ("contained", contained, "time to contain", seconds(contained, opened)),
            ("resolved", resolved, "time to resolve", seconds(resolved, opened))]
    return pl.DataFrame(rows, schema=MILESTONE, orient="row")
