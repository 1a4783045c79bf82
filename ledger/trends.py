"""A service's golden signals over a range, for the Trends page.

Per bucket: latency p50, p95 and p99 (the highest of the service's latency series, each exact
for its series), traffic, error ratio and saturation (one line per series, the few with the
highest peaks), read from the per-minute rollups for ranges up to a day and from the per-hour
rollups beyond (the switch point measured by bench/trends.py); the same for the period before,
shifted onto this one for comparison; and the service's incidents, silences and maintenance
windows in the range, as bands. The series are the service's golden signals
(policies/rules.py ``golden_signals``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from pydantic import BaseModel
from sqlalchemy import Engine

from ledger import queries
from ledger.histograms import bucket_quantile
from ledger.rollups import STEPS, Rollups, floor_time
from ledger.samples import SegmentStore
from ledger.silences import occurrences
from policies.loader import Policy
from policies.rules import Golden, ServiceSignals, golden_signals
from policies.selectors import Selector, matcher_from_dict, parse_selector

RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(days=1),
          "7d": timedelta(days=7), "30d": timedelta(days=30)}
MINUTE_ROLLUPS_UP_TO = timedelta(days=1)
SERIES_LABELS = ("service", "target", "kind")  # what every probe series carries, for matching silences
INCIDENT_LIMIT = 1000
SATURATION_LINES = 8  # the series with the highest peaks in the range; a chart of hundreds of lines says nothing
FRAME = {"ts": pl.Datetime("us", "UTC"), "at": pl.Datetime("us", "UTC"), "series": pl.String,
         "value": pl.Float64, "period": pl.String}
# Each signal per bucket, over the rollups of the series each role matched (the table members):
# latency the highest p50, p95 and p99 of its series, in ms (durations), or the highest value of
# each percentile series (percentile), or none here (histogram: computed from the buckets'
# rates, see _histogram_latency); traffic the probe runs a minute (the samples of probe_success),
# the declared rates summed, or the declared counters' increase per second between the buckets'
# last samples summed; the error ratio the share of failed probe runs, the declared error rates
# summed over the traffic summed, or the highest declared ratio; saturation the mean of each
# series in percent, for the SATURATION_LINES series with the highest peaks in the range.
SIGNALS = """
WITH r AS MATERIALIZED (
    SELECT ts, role, id, count, sum, last, p50, p95, p99, scale FROM rollups JOIN members USING (name, labels)
    WHERE ts >= $first AND ts < $until AND ({where})
), rates AS MATERIALIZED (
    SELECT ts, role, id, count, {rate} AS rate FROM r WHERE role IN ('traffic', 'errors')
    WINDOW w AS (PARTITION BY id ORDER BY ts)
), top AS (
    SELECT id FROM r WHERE role = 'saturation' AND ts >= $since
    GROUP BY id ORDER BY max(sum / count * scale) DESC, id LIMIT $lines
), signals AS (
    {latency}
    SELECT 'traffic' AS signal, ts, {traffic} FROM rates WHERE role = 'traffic' GROUP BY ts HAVING count(rate) > 0
    UNION ALL
    {errors}
    UNION ALL
    SELECT 'saturation', ts, members.title, sum / count * r.scale FROM r JOIN members USING (id)
    WHERE r.role = 'saturation' AND id IN (SELECT id FROM top)
)
SELECT signal, CASE WHEN ts < $since THEN ts + $span ELSE ts END AS ts, ts AS "at", series, value,
       CASE WHEN ts < $since THEN 'previous' ELSE 'current' END AS period
FROM signals WHERE value IS NOT NULL ORDER BY "at"
"""
LATENCY = {
    "durations": "SELECT 'latency' AS signal, ts, unnest(['p50', 'p95', 'p99']) AS series, "
                 "unnest([max(p50), max(p95), max(p99)]) * 1000 AS value FROM r WHERE role = 'latency' GROUP BY ts "
                 "UNION ALL",
    "percentile": "SELECT 'latency' AS signal, ts, '{label}' AS series, max(sum / count) * 1000 AS value FROM r "
                  "WHERE role = 'latency' GROUP BY ts UNION ALL",
    "histogram": "",
}
RATE = {  # a rollup row's requests (or errors) per second
    "rate": "sum / count",
    # a counter's increase since the previous bucket's last sample (all of it after a reset), per second
    "counter": "CASE WHEN last >= lag(last) OVER w THEN last - lag(last) OVER w ELSE last END "
               "/ epoch(ts - lag(ts) OVER w)",
}
TRAFFIC = {"probe runs": "'probe runs' AS series, sum(count) / {minutes} AS value",
           "rate": "'requests' AS series, sum(rate) AS value"}  # a counter's rows are rates by then (RATE)
ERRORS = {
    "probe runs": "SELECT 'errors', ts, 'error ratio', 1 - sum(sum) / sum(count) FROM r WHERE role = 'success' "
                  "GROUP BY ts",
    "rate": "SELECT 'errors', ts, 'error ratio', sum(rate) FILTER (role = 'errors') / "
            "sum(rate) FILTER (role = 'traffic') FROM rates GROUP BY ts "
            "HAVING count(rate) FILTER (role = 'errors') > 0 AND sum(rate) FILTER (role = 'traffic') > 0",
    "ratio": "SELECT 'errors', ts, 'error ratio', max(sum / count) FROM r WHERE role = 'errors' GROUP BY ts",
}


class Band(BaseModel):
    """A span drawn across the charts: an incident, a silence or a maintenance window."""

    kind: str  # incident | silence | maintenance
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Signal:
    title: str
    unit: str  # ms, runs/min, req/s, ratio, %, or "" when the series do not say
    frame: pl.DataFrame  # ts (on this range's axis), at (when measured), series, value, period; by time
    note: str  # what it is drawn from: "the highest of 3 series in each bucket"

    @property
    def current(self) -> pl.DataFrame:
        return self.frame.filter(pl.col("period") == "current")


@dataclass(frozen=True)
class Trends:
    service: str
    range: str
    resolution: str  # the rollups read: 1m or 1h
    since: datetime
    until: datetime
    signals: dict[str, Signal]  # latency, traffic, errors, saturation
    bands: list[Band]

    @property
    def empty(self) -> bool:
        return all(signal.current.is_empty() for signal in self.signals.values())


def service_names(policy: Policy, engine: Engine) -> list[str]:
    """Every service the policy probes or declares signals for, and any with incidents."""
    return sorted({t.service for t in policy.targets} | set(policy.rules.services) | set(queries.services(engine)))


def resolution_for(span: timedelta) -> str:
    return "1m" if span <= MINUTE_ROLLUPS_UP_TO else "1h"


def read_trends(rollups: Rollups, engine: Engine, services: dict[str, ServiceSignals], service: str,
                range_key: str, now: datetime, resolution: str | None = None, location: str | None = None) -> Trends:
    """The golden signals of ``service`` over the last ``range_key`` (a key of RANGES) and the
    period before it, with the bands of its incidents, silences and maintenance windows; from
    the rollups of ``resolution`` (default: those that suit the range); ``location``: only the
    series probed from that location (a fleet's, docs/fleet.md)."""
    span = RANGES[range_key]
    resolution = resolution or resolution_for(span)
    return read_window(rollups, engine, services, service, floor_time(now - span, STEPS[resolution]), now,
                       range_key, resolution, location)


def read_window(rollups: Rollups, engine: Engine, services: dict[str, ServiceSignals], service: str,
                since: datetime, now: datetime, label: str, resolution: str | None = None,
                location: str | None = None) -> Trends:
    """The golden signals of ``service`` from ``since`` to ``now`` and over the span as long before
    it, named ``label`` (1h, or 09:12-10:40), as :func:`read_trends` reads them."""
    span = now - since
    resolution = resolution or resolution_for(span)
    step = STEPS[resolution]
    golden = golden_signals(services, service)
    store = rollups.stores[resolution]
    roles = _roles(golden)
    where, params = _prefilter([role.selector for role in roles])
    members = read_members(store, where, params, roles, since - span, now)
    if location is not None:
        members = members.filter(pl.col("labels").map_elements(lambda labels: json.loads(labels).get("location")
                                                               == location, return_dtype=pl.Boolean))
    traffic = golden.traffic.type if golden.traffic else "probe runs"
    errors = golden.errors.type if golden.errors else "probe runs"
    sql = SIGNALS.format(
        latency=LATENCY[golden.latency.type].format(label=golden.latency.label), where=where,
        rate=f"CASE role WHEN 'traffic' THEN {RATE.get(traffic, RATE['rate'])} ELSE {RATE['rate']} END",
        traffic=TRAFFIC.get(traffic, TRAFFIC["rate"]).format(minutes=step / timedelta(minutes=1)),
        errors=ERRORS[errors])
    query = {"first": since - span, "until": now, "since": since, "span": span, "lines": SATURATION_LINES, **params}
    rows = store.query(sql, since - span, now, query, {"members": members})
    rows = rows.with_columns(pl.col("ts", "at").dt.convert_time_zone("UTC"))
    if golden.latency.type == "histogram":
        rows = pl.concat([rows, _histogram_latency(store, since, span, query, members, where)], how="vertical_relaxed")
    parts = rows.partition_by("signal", as_dict=True)
    by_signal = {name: parts[(name,)].select(list(FRAME)).cast(FRAME) if (name,) in parts
                 else pl.DataFrame(schema=FRAME) for name in ("latency", "traffic", "errors", "saturation")}
    counts = {role: len(members.filter(pl.col("role").is_in(roles)).unique(["name", "labels"]))
              for role, roles in (("latency", ["latency"]), ("traffic", ["traffic"]), ("saturation", ["saturation"]),
                                  ("errors", ["errors"] if errors == "ratio" else ["errors", "traffic"] if golden.errors
                                   else ["success"]))}
    notes = {"latency": LATENCY_NOTES[golden.latency.type].format(n=counts["latency"]),
             "traffic": f"the sum of {counts['traffic']} series" + (", counters: their increase per second"
                                                                    if traffic == "counter" else ""),
             "errors": f"from {counts['errors']} series" + (", ratios: the highest" if errors == "ratio" else ""),
             "saturation": f"the {SATURATION_LINES} of {counts['saturation']} series with the highest peaks"
             if counts["saturation"] > SATURATION_LINES else f"{counts['saturation']} series"}
    label_sets = [{"service": service}, *({**json.loads(labels), "service": service}
                                          for labels in members["labels"].unique())]
    return Trends(
        service=service, range=label, resolution=resolution, since=since, until=now,
        signals={
            "latency": Signal("Latency", "ms", by_signal["latency"], notes["latency"]),
            "traffic": Signal("Traffic", "runs/min" if traffic == "probe runs" else "req/s", by_signal["traffic"],
                              notes["traffic"]),
            "errors": Signal("Error ratio", "ratio", by_signal["errors"], notes["errors"]),
            "saturation": Signal("Saturation", "%", by_signal["saturation"], notes["saturation"]),
        },
        bands=bands(engine, service, since, now, label_sets),
    )


LATENCY_NOTES = {"durations": "the highest of {n} series in each bucket",
                 "percentile": "the highest of {n} percentile series in each bucket, as they are",
                 "histogram": "computed from {n} bucket series as histogram_quantile does; the highest group"}
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
BUCKETS = """
SELECT ts, labels, sum / count AS rate FROM rollups JOIN members USING (name, labels)
WHERE ts >= $first AND ts < $until AND role = 'latency' AND ({where})
"""


def _histogram_latency(store: SegmentStore, since: datetime, span: timedelta, query: dict, members: pl.DataFrame,
                       where: str) -> pl.DataFrame:
    """Latency p50, p95 and p99 (ms) per bucket from a histogram's bucket rates (series with an
    ``le`` label, each bucket's mean rate), as histogram_quantile computes them for each group of
    the other labels; the highest group's in each bucket. Series without a numeric ``le`` are left
    out, as Prometheus leaves them out."""
    params = {k: v for k, v in query.items() if k not in ("since", "span", "lines")}
    rows = store.query(BUCKETS.format(where=where), query["first"], query["until"], params, {"members": members})
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for ts, labels, rate in rows.iter_rows():
        parsed = json.loads(labels)
        try:
            bound = float(parsed.pop("le"))
        except (KeyError, ValueError):
            continue
        groups.setdefault((ts, json.dumps(parsed, sort_keys=True)), []).append((bound, rate))
    best: dict[tuple, float] = {}
    for (ts, _), buckets in groups.items():
        for series, q in QUANTILES:
            value = bucket_quantile(q, buckets)
            if math.isfinite(value):
                best[(ts, series)] = max(best.get((ts, series), -math.inf), value)
    out = [("latency", ts + span if ts < since else ts, ts, series, value * 1000,
            "previous" if ts < since else "current") for (ts, series), value in sorted(best.items())]
    return pl.DataFrame(out, schema={"signal": pl.String, **FRAME}, orient="row")


@dataclass(frozen=True)
class Role:
    """A selector and the golden signal it feeds, with its saturation line's name and scale to percent."""

    role: str  # latency, traffic, errors, success, saturation
    selector: Selector
    title: str | None = None
    scale: float = 1.0


def read_members(store: SegmentStore, where: str, params: dict, roles: list[Role],
                 since: datetime, until: datetime) -> pl.DataFrame:
    """The series with rollups in [since, until) that each role's selectors match (among the
    rows ``where`` keeps): name, labels, role, a short title, the scale to percent and an id (its
    row); a series in two roles is there twice."""
    found = store.query(f"SELECT DISTINCT name, labels FROM rollups WHERE ts >= $first AND ts < $until AND ({where})",
                        since, until, {"first": since, "until": until, **params})
    rows = []
    for name, labels in found.iter_rows():
        parsed = json.loads(labels)
        taken = set()
        for role in roles:
            if role.role not in taken and role.selector.matches(name, parsed):
                taken.add(role.role)
                rows.append((name, labels, role.role, role.title or series_title(name, parsed), role.scale))
    return pl.DataFrame(rows, schema={"name": pl.String, "labels": pl.String, "role": pl.String, "title": pl.String,
                                      "scale": pl.Float64}, orient="row").with_row_index("id")


def series_title(name: str, labels: dict[str, str]) -> str:
    """A short legend for a series: ``CPU (localhost)`` for a probe value, else the name and
    the labels besides the service."""
    if name == "probe_value" and "value" in labels:
        return f"{labels['value']} ({labels.get('target', '')})"
    rest = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "service")
    return f"{name}{{{rest}}}" if rest else name


def bands(engine: Engine, service: str, since: datetime, until: datetime,
          label_sets: list[dict[str, str]]) -> list[Band]:
    """The service's incidents (open ones until ``until``; the INCIDENT_LIMIT most recently
    updated) and the silences and maintenance windows that concern the label sets of its
    series, within [since, until]."""
    found = [Band(kind="incident", label=f"incident #{i.id} ({i.severity})", start=max(i.opened_at, since),
                  end=min(i.resolved_at or until, until))
             for i in queries.list_incidents(engine, services=[service], limit=INCIDENT_LIMIT)
             if i.opened_at < until and (i.resolved_at is None or i.resolved_at > since)]
    for item in queries.list_silences(engine, until, include_expired=True):
        if any(_concerns(item.matchers, labels) for labels in label_sets):
            found += [Band(kind=item.kind, label=f"{item.kind} #{item.id}: {item.comment}", start=start, end=end)
                      for start, end in occurrences(item, since, until)]
    return sorted(found, key=lambda band: band.start)


def _concerns(matchers: list[dict], labels: dict[str, str]) -> bool:
    """Whether a silence's matchers fit a series' labels: those on labels every probe series
    carries must match (at least one must be there); others (severity, rule) cannot be told."""
    known = [matcher_from_dict(m) for m in matchers if m["label"] in SERIES_LABELS]
    return bool(known) and all(m.matches(labels) for m in known)


def _roles(golden: Golden) -> list[Role]:
    roles = [Role("latency", parse_selector(golden.latency.series)), Role("success", parse_selector(golden.success))]
    roles.append(Role("traffic", parse_selector(golden.traffic.series if golden.traffic else golden.success)))
    if golden.errors:
        roles.append(Role("errors", parse_selector(golden.errors.series)))
    roles += [Role("saturation", parse_selector(item.series), item.name, 100.0 if item.unit == "ratio" else 1.0)
              for item in golden.saturation]
    return roles


def _prefilter(selectors: list[Selector]) -> tuple[str, dict[str, str]]:
    """SQL (with named parameters) that keeps the rows any selector may match: its name, and
    its service and target when it names them exactly. The full matching happens on the series
    found."""
    terms, params = [], {}
    for selector in selectors:
        parts = [("name", selector.name)] if selector.name else []
        parts += [(m.label, m.value) for m in selector.matchers if m.op == "=" and m.label in ("service", "target")]
        if not parts:
            return "true", {}
        tests = []
        for column, value in parts:
            key = f"p{len(params)}"
            params[key] = value
            tests.append(f"{column} = ${key}")
        terms.append("(" + " AND ".join(tests) + ")")
    return " OR ".join(terms) or "false", params
