"""The read-only checks of an investigation plan, run by the workbench itself over the
draft's window: a series reduced since the opening and before it, a target's recent probe
runs, a service's incidents in the window."""

from __future__ import annotations

import json

import polars as pl
from pydantic import BaseModel
from sqlalchemy import Engine

from hypotheses.errors import HypothesisError
from hypotheses.models import Check, Draft
from ledger import queries
from ledger.samples import SampleStore
from policies.selectors import parse_selector

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class CheckResult(BaseModel):
    title: str
    summary: str
    rows: list[dict]


def run_check(check: Check, draft: Draft, engine: Engine, store: SampleStore) -> CheckResult:
    return RUNNERS[check.kind](check, draft, engine, store)


def _series(check: Check, draft: Draft, engine: Engine, store: SampleStore) -> CheckResult:
    try:
        selector = parse_selector(check.params["series"])
    except ValueError as exc:
        raise HypothesisError(f"check {check.title!r}: {exc}") from None
    where, params = ("AND name = ?", [selector.name]) if selector.name else ("", [])
    rows = store.query(f"SELECT name, labels, ts, value, ts >= ? AS during FROM samples WHERE ts >= ? AND ts <= ? "
                       f"{where} ORDER BY ts", draft.since, draft.until,
                       [draft.opened_at, draft.since, draft.until, *params])
    how = check.params["reduce"]
    found = []
    for (name, labels), part in rows.group_by("name", "labels", maintain_order=True):
        if selector.matches(name, json.loads(labels)):
            found.append({"series": f"{name}{labels}", "since the opening": reduce(part.filter(pl.col("during")), how),
                          "before": reduce(part.filter(~pl.col("during")), how), "samples": part.height})
    summary = f"{how} of {len(found)} series since the opening and before it" if found else \
        f"no samples of {check.params['series']} in the window"
    return CheckResult(title=check.title, summary=summary, rows=found)


def reduce(part: pl.DataFrame, how: str) -> float | None:
    values = part["value"]
    if values.is_empty():
        return None
    if how in QUANTILES:
        return values.quantile(QUANTILES[how], "linear")
    return {"last": lambda: values[-1], "avg": values.mean, "min": values.min, "max": values.max,
            "sum": values.sum, "count": lambda: float(values.len())}[how]()


def _observations(check: Check, draft: Draft, engine: Engine, store: SampleStore) -> CheckResult:
    runs = queries.recent_observations(engine, check.params["target"])
    failed = sum(1 for run in runs if not run.ok)
    return CheckResult(title=check.title, summary=f"{len(runs)} recent runs, {failed} failed",
                       rows=[run.model_dump() for run in runs])


def _incidents(check: Check, draft: Draft, engine: Engine, store: SampleStore) -> CheckResult:
    found = queries.incidents_in_window(engine, draft.since, draft.until, service=check.params["service"])
    summary = f"{len(found)} incident(s) of {check.params['service']} in the window"
    return CheckResult(title=check.title, summary=summary,
                       rows=[i.model_dump(include={"id", "state", "severity", "title", "opened_at", "resolved_at"})
                             for i in found])


RUNNERS = {"series": _series, "observations": _observations, "incidents": _incidents}
