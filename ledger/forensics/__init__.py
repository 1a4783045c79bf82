"""Read-only frames of the ledger and the samples store for notebooks and post-mortems: Polars
frames (DuckDB reads them by name), the same on SQLite and PostgreSQL, masked as the pages show
the ledger. Reading never waits for the worker.

    >>> from ledger import forensics
    >>> record = forensics.incident_record(engine, 12)          # one incident whole
    >>> forensics.samples_around(engine, store, 12, resolution="1m")
    >>> forensics.response_times(engine, since, until)           # the fleet: MTTA and MTTR

One incident: ``incident_record`` (and each of its frames alone: ``timeline``, ``findings``,
``evidence``, ``alerts``, ``hypotheses``, ``actions``, ``silences``, ``incident_notifications``,
``decisions``), ``milestones``. Around it: ``samples_around``, ``golden_signals_around``,
``concurrent_incidents``, ``concurrent_alerts``. The fleet: ``incidents_by_service_and_rule``,
``response_times``, ``time_in_state``, ``noise``, ``model_cost``; a service's health against
its objectives: ``daily_health``, ``error_budget``, ``budget_burn``. See docs/forensics.md.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl
from sqlalchemy import Engine
from sqlmodel import col, select

from ledger.db import known_secrets, read_session
from ledger.forensics.around import (
    concurrent_alerts,
    concurrent_incidents,
    golden_signals_around,
    incident_scope,
    incident_window,
    samples_around,
)
from ledger.forensics.fleet import (
    episodes,
    incidents_by_service_and_rule,
    incidents_in_range,
    model_cost,
    noise,
    response_times,
    routing_decisions,
    state_spans,
    time_in_state,
)
from ledger.forensics.frames import TIME, to_frame
from ledger.forensics.health import budget_burn, daily_health, error_budget
from ledger.forensics.incident import (
    IncidentRecord,
    actions,
    alerts,
    decisions,
    evidence,
    findings,
    hypotheses,
    incident,
    incident_notifications,
    incident_record,
    incidents,
    milestones,
    silences,
    timeline,
)
from ledger.tables import Observation
from policies.secrets import redact_data

OBSERVATION = {"target": pl.String, "kind": pl.String, "service": pl.String, "ok": pl.Boolean,
               "started_at": TIME, "duration_ms": pl.Float64, "status": pl.Int64, "error": pl.String}

__all__ = [
    "IncidentRecord", "actions", "alerts", "budget_burn", "concurrent_alerts", "concurrent_incidents", "daily_health", "decisions", "episodes", "error_budget",
    "evidence", "findings", "golden_signals_around", "hypotheses", "incident", "incident_notifications",
    "incident_record", "incident_scope", "incident_window", "incidents", "incidents_by_service_and_rule",
    "incidents_in_range", "milestones", "model_cost", "noise", "observations", "response_times",
    "routing_decisions", "samples_around", "silences", "state_spans", "time_in_state", "time_to_resolve",
    "timeline",
]


def observations(engine: Engine, target: str | None = None, since: datetime | None = None) -> pl.DataFrame:
    """Probe runs (of one target, from ``since``, if given), oldest first, masked."""
    query = select(Observation).order_by(col(Observation.started_at), col(Observation.id))
    if target:
        query = query.where(Observation.target == target)
    if since:
        query = query.where(Observation.started_at >= since)
    with read_session(engine) as session:
        rows = [row.model_dump(include=set(OBSERVATION)) for row in session.exec(query)]
        return to_frame(redact_data(rows, known_secrets(session)), OBSERVATION)


def time_to_resolve(engine: Engine) -> pl.DataFrame:
    """Per service: resolved incidents and their time to resolve (minutes), computed in DuckDB."""
    frame = incidents(engine)  # noqa: F841  (DuckDB reads the local frame by name)
    return duckdb.sql("""
        SELECT service, count(*) AS resolved,
               round(avg(epoch(resolved_at - opened_at)) / 60, 2) AS mean_minutes,
               round(max(epoch(resolved_at - opened_at)) / 60, 2) AS max_minutes
        FROM frame WHERE resolved_at IS NOT NULL GROUP BY service ORDER BY service
    """).pl()
