"""What surrounded one incident: the samples of its services and targets in a window before and
after it (raw, or the per-minute or per-hour rollups), its services' golden signals as the
Trends page reads them (``ledger.trends.read_window``), and the other incidents and alerts of
the same time. The samples store is read the way the pages read it, so this works while the
worker writes.

    >>> from ledger.samples import SampleStore
    >>> store = SampleStore(paths.samples_dir)
    >>> forensics.samples_around(engine, store, 12, resolution="1m")
    >>> forensics.golden_signals_around(engine, store, policy.rules.services, 12)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from ledger import queries
from ledger.db import utcnow
from ledger.forensics.frames import TIME, to_frame
from ledger.forensics.incident import ALERT, INCIDENT
from ledger.rollups import SCHEMA as ROLLUP_SCHEMA
from ledger.rollups import Rollups
from ledger.samples import SCHEMA as SAMPLE_SCHEMA
from ledger.samples import SampleStore
from ledger.trends import read_window
from policies.rules import ServiceSignals

BEFORE = timedelta(minutes=30)
AFTER = timedelta(minutes=30)
RESOLUTIONS = ("raw", "1m", "1h")
SIGNAL = {"service": pl.String, "signal": pl.String, "unit": pl.String, "ts": TIME, "at": TIME, "series": pl.String,
          "value": pl.Float64, "period": pl.String}
CONCURRENT = {**INCIDENT, "targets": pl.String, "categories": pl.String}
SERIES_OF = """
SELECT * FROM {view} WHERE ts >= $since AND ts <= $until
AND (list_contains($services, service) OR list_contains($targets, target))
ORDER BY ts, name, labels
"""


def incident_window(engine: Engine, incident_id: int, before: timedelta = BEFORE, after: timedelta = AFTER,
                    now: datetime | None = None) -> tuple[datetime, datetime]:
    """From ``before`` the incident opened to ``after`` it resolved (an open one: to ``now``)."""
    detail = queries.incident_detail(engine, incident_id, observations=0)
    now = now or utcnow()
    end = detail.resolved_at + after if detail.resolved_at is not None else now
    return detail.opened_at - before, min(end, max(now, detail.opened_at))


def incident_scope(engine: Engine, incident_id: int) -> tuple[list[str], list[str]]:
    """The incident's services and targets: its own service and those of its findings."""
    detail = queries.incident_detail(engine, incident_id, observations=0)
    found = queries.findings_in_window(engine, detail.opened_at, detail.resolved_at or utcnow())
    mine = [f for f in found if f.incident_id == incident_id]
    return sorted({detail.service, *(f.service for f in mine)}), sorted({f.target for f in mine})


def samples_around(engine: Engine, store: SampleStore, incident_id: int, *, before: timedelta = BEFORE,
                   after: timedelta = AFTER, resolution: str = "raw", now: datetime | None = None) -> pl.DataFrame:
    """The samples of the incident's services and targets from ``before`` it opened to ``after``
    it resolved: raw samples (ts, name, service, target, labels, value) or the rollups of
    ``resolution`` 1m or 1h (count, sum, min, max, last, p50, p95, p99 per bucket).

    >>> raw = forensics.samples_around(engine, store, 12, before=timedelta(minutes=10))
    >>> raw.filter(pl.col("name") == "probe_success").group_by("target").agg(pl.col("value").mean())
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r}: use one of {', '.join(RESOLUTIONS)}")
    since, until = incident_window(engine, incident_id, before, after, now)
    services, targets = incident_scope(engine, incident_id)
    source = store if resolution == "raw" else Rollups(store).stores[resolution]
    schema = SAMPLE_SCHEMA if resolution == "raw" else ROLLUP_SCHEMA
    rows = source.query(SERIES_OF.format(view=source.view), since, until,
                        {"since": since, "until": until, "services": services, "targets": targets})
    return rows.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).select(list(schema)).cast(schema)


def golden_signals_around(engine: Engine, store: SampleStore, services: dict[str, ServiceSignals], incident_id: int,
                          *, before: timedelta = BEFORE, after: timedelta = AFTER, resolution: str | None = None,
                          now: datetime | None = None) -> pl.DataFrame:
    """The golden signals (latency, traffic, errors, saturation) of the incident's services over
    its window, as the Trends page computes them (``ledger.trends.read_window``, with the period
    as long before it in ``period`` previous); ``services``: the policy's declared signals
    (``policy.rules.services``). One row per service, signal, bucket and series, in that order.

    >>> signals = forensics.golden_signals_around(engine, store, policy.rules.services, 12)
    >>> signals.filter((pl.col("signal") == "errors") & (pl.col("period") == "current"))
    """
    since, until = incident_window(engine, incident_id, before, after, now)
    rollups = Rollups(store)
    label = f"{since:%H:%M}-{until:%H:%M}"
    parts = []
    for service in incident_scope(engine, incident_id)[0]:
        trends = read_window(rollups, engine, services, service, since, until, label, resolution)
        parts += [signal.frame.with_columns(service=pl.lit(service), signal=pl.lit(name), unit=pl.lit(signal.unit))
                  for name, signal in trends.signals.items()]
    if not parts:
        return pl.DataFrame(schema=SIGNAL)
    return pl.concat([part.select(list(SIGNAL)).cast(SIGNAL) for part in parts]).sort(  # a stable order
        "service", "signal", "period", "ts", "series")


def concurrent_incidents(engine: Engine, incident_id: int, *, margin: timedelta = BEFORE,
                         now: datetime | None = None) -> pl.DataFrame:
    """The other incidents open at some time from ``margin`` before the incident to ``margin``
    after it, with their targets and categories."""
    since, until = incident_window(engine, incident_id, margin, margin, now)
    others = [i for i in queries.incidents_in_window(engine, since, until) if i.id != incident_id]
    return to_frame(others, CONCURRENT)


def concurrent_alerts(engine: Engine, incident_id: int, *, margin: timedelta = BEFORE,
                      now: datetime | None = None) -> pl.DataFrame:
    """The alert episodes firing from ``margin`` before the incident to ``margin`` after it, on any
    incident or none (``incident_id`` says which)."""
    since, until = incident_window(engine, incident_id, margin, margin, now)
    return to_frame(queries.alerts(engine, since=since, until=until), ALERT)
