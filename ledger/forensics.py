"""Read-only frames of the ledger for notebooks: Polars frames, DuckDB for the SQL-minded."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl
from sqlalchemy import Engine
from sqlmodel import col, select

from ledger.db import read_session
from ledger.tables import Incident, Observation, TimelineEntry

TIME = pl.Datetime("us", "UTC")
INCIDENT = {"id": pl.Int64, "title": pl.String, "state": pl.String, "severity": pl.String, "service": pl.String,
            "correlation_key": pl.String, "opened_at": TIME, "updated_at": TIME, "resolved_at": TIME,
            "finding_count": pl.Int64}
TIMELINE = {"at": TIME, "actor": pl.String, "kind": pl.String, "from_state": pl.String, "to_state": pl.String,
            "message": pl.String}
OBSERVATION = {"target": pl.String, "kind": pl.String, "service": pl.String, "ok": pl.Boolean,
               "started_at": TIME, "duration_ms": pl.Float64, "status": pl.Int64, "error": pl.String}


def _frame(rows: list, schema: dict) -> pl.DataFrame:
    return pl.DataFrame([{c: getattr(r, c) for c in schema} for r in rows], schema=schema, orient="row")


def incidents(engine: Engine) -> pl.DataFrame:
    with read_session(engine) as session:
        return _frame(session.exec(select(Incident).order_by(col(Incident.id))).all(), INCIDENT)


def timeline(engine: Engine, incident_id: int) -> pl.DataFrame:
    with read_session(engine) as session:
        rows = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
                            .order_by(col(TimelineEntry.at), col(TimelineEntry.id))).all()
    return _frame(rows, TIMELINE)


def observations(engine: Engine, target: str | None = None, since: datetime | None = None) -> pl.DataFrame:
    query = select(Observation).order_by(col(Observation.started_at))
    if target:
        query = query.where(Observation.target == target)
    if since:
        query = query.where(Observation.started_at >= since)
    with read_session(engine) as session:
        return _frame(session.exec(query).all(), OBSERVATION)


def time_to_resolve(engine: Engine) -> pl.DataFrame:
    """Per service: resolved incidents and their time to resolve (minutes), computed in DuckDB."""
    frame = incidents(engine)  # noqa: F841  (DuckDB reads the local frame by name)
    return duckdb.sql("""
        SELECT service, count(*) AS resolved,
               round(avg(epoch(resolved_at - opened_at)) / 60, 2) AS mean_minutes,
               round(max(epoch(resolved_at - opened_at)) / 60, 2) AS max_minutes
        FROM frame WHERE resolved_at IS NOT NULL GROUP BY service ORDER BY service
    """).pl()
