"""Detector rules learned from history, as suggestions the operator reviews: each backtested
beside the rule it would add to or replace, and kept only when it does better (recall no lower,
noise no higher, within the noise budget). Accepting one writes it to the policy's
``learned-rules.yaml`` (atomically; the hand-written files are never touched) and keeps the
revision in the ledger; any revision can be restored.

What is suggested, for each service with incidents in ``learning.history``:

- **new**: when a service's incidents were missed by every rule it has (or it has none), a rule
  over each of its golden signals (latency, saturation, the error ratio where declared), its
  threshold learned from the series' own history outside the incidents: a robust baseline,
  median + 6 x 1.4826 x MAD of the values, for each hour of the week with 3 weeks of history;
  kept when its backtest catches them;
- **tune**: for each of its rules that is noisy (more episodes a day than the noise budget,
  firings the operator marked noise or expected, or fewer than half of its episodes overlapping
  an incident or a firing marked useful), the same rule with a higher
  threshold, a longer ``for`` or a longer window, the variant with the fewest episodes that
  loses no recall.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import Engine

from detectors.cycle import load_windows
from learning.backtests import RULE, BacktestReport, backtest_rule
from ledger import queries
from ledger.db import as_utc, read_session, write_session
from ledger.lifecycle import SuggestionStatus
from ledger.repo import rules as rule_repo
from ledger.samples import SampleStore
from ledger.tables import RuleRevision, RuleSuggestion
from policies.errors import PolicyError, WorkbenchError
from policies.loader import LEARNED, load_policy
from policies.rules import HOURS_OF_WEEK, golden_signals
from policies.schema import format_duration
from policies.selectors import parse_selector

MAD_SCALE = 1.4826  # MAD to standard deviation, for normally distributed values
BASELINE_WIDTH = 6  # thresholds this many (robust) deviations above the median
THRESHOLD_STEPS = (1.25, 1.5, 2.0, 3.0)
FOR_STEPS = (2, 4)  # times the rule's for, or FOR_BASE when shorter
FOR_BASE = timedelta(minutes=5)
WEEKS_FOR_SEASONS = 3  # of history before a bound is learned for each hour of the week
WINDOW_STEPS = (2, 4)  # times the rule's window
ERROR_RATIO = 0.05  # a learned error-ratio rule fires above this share of failed requests


@dataclass(frozen=True)
class Candidate:
    kind: str  # new | tune
    rule: dict  # as rules.yaml holds it
    replaces: str | None
    why: str
    incidents: list[int]
    series: list[str]


SPANS_KEPT = 500  # episodes a suggestion keeps of each backtest, for its chart


def summary(report: BacktestReport) -> dict:
    """What a suggestion keeps of a backtest: the figures, and the first SPANS_KEPT episodes."""
    return {"from": report.from_.isoformat(), "to": report.to.isoformat(), "episodes": len(report.episodes),
            "spans": [[e.start.isoformat(), e.end.isoformat() if e.end else None]
                      for e in report.episodes[:SPANS_KEPT]],
            "fires_per_day": report.fires_per_day, "recall": report.recall, "precision": report.precision,
            "caught": report.incidents["caught"], "missed": report.incidents["missed"],
            "lead_time_seconds": report.lead_time_seconds["median"], "time_in_alert_ratio": report.time_in_alert_ratio,
            "marked_noise": report.marked["noise"]}


def beats(suggested: dict, current: dict | None, budget: float) -> bool:
    """A new rule: it catches an incident, within the noise budget. A tuning: recall no lower,
    noise no higher (and within the budget), and better at one of them."""
    if suggested["fires_per_day"] > budget:
        return False
    if current is None:
        return bool(suggested["caught"])
    recall, was = suggested["recall"] or 0, current["recall"] or 0
    noise, had = suggested["marked_noise"], current["marked_noise"]  # firings the operator called noise
    return recall >= was and suggested["episodes"] <= current["episodes"] and noise <= had and (
        recall > was or suggested["episodes"] < current["episodes"] or noise < had)


def suggest(engine: Engine, store: SampleStore, policy, now: datetime, service: str | None = None) -> list[int]:
    """Learn, backtest and keep the suggestions that do better; return their ids. A pending
    suggestion for the same rule is superseded by the new one."""
    learning = policy.rules.learning
    start = now - learning.history
    incidents = queries.incidents_in_window(engine, start, now, service=service)
    services = sorted({i.service for i in incidents if as_utc(i.opened_at) >= start})
    reports = {r.name: backtest_rule(engine, store, policy, r, start, now) for r in policy.rules.resolved}
    kept = []
    for name in services:
        for candidate in _candidates(engine, store, policy, name, start, now, reports):
            rule = RULE.validate_python(candidate.rule)
            suggested = summary(backtest_rule(engine, store, policy, rule, start, now, candidate.replaces))
            current = summary(reports[candidate.replaces]) if candidate.replaces else None
            if not beats(suggested, current, learning.noise_budget):
                continue
            with write_session(engine) as session:
                kept.append(rule_repo.add_suggestion(session, RuleSuggestion(
                    created_at=now, kind=candidate.kind, name=rule.name, replaces=candidate.replaces, service=name,
                    rule=candidate.rule, why=candidate.why,
                    provenance={"incidents": candidate.incidents, "series": candidate.series,
                                "from": start.isoformat(), "to": now.isoformat()},
                    backtest={"suggested": suggested, "current": current})).id)
    return kept


def _candidates(engine, store, policy, service: str, start, end, backtests: dict) -> list[Candidate]:
    """What to suggest for ``service``, given the backtests of every rule of the policy."""
    rules = [r for r in policy.rules.resolved if service in backtests[r.name].services]
    reports = {r.name: backtests[r.name] for r in rules}
    caught = {i for report in reports.values() for i in report.incidents["caught"]}
    missed = [i.id for i in queries.incidents_in_window(engine, start, end, service=service)
              if as_utc(i.opened_at) >= start and i.id not in caught]
    found = []
    if missed:
        found += _new_rules(engine, store, policy, service, start, end, missed, reports)
    objective = policy.rules.services.get(service, None) and policy.rules.services[service].objective
    if objective and not any(r.kind == "burn_rate" for r in rules):
        found += _burn_rate_rules(policy, service, objective, missed)
    for rule in rules:
        report = reports[rule.name]
        noisy = report.fires_per_day > policy.rules.learning.noise_budget or report.marked["noise"] > 0 or (
            report.precision is not None and report.precision < 0.5)
        if noisy and report.episodes:
            found += _tunings(rule, report, policy)
    return found


def _new_rules(engine, store, policy, service, start, end, missed, reports) -> list[Candidate]:
    """A rule over each of the service's golden signals that has history (latency, saturation,
    and the error ratio where errors and traffic are declared), its threshold learned from the
    signal's values outside the incidents; the backtest then tells which moved before them."""
    golden = golden_signals(policy.rules.services, service)
    quiet = [(as_utc(i.opened_at), as_utc(i.resolved_at) if i.resolved_at else end)
             for i in queries.incidents_in_window(engine, start, end, service=service)]
    why = f"{len(missed)} incident(s) of {service} " + ("no rule caught" if reports else "and no rule for it")
    latency = {"durations": {"kind": "latency", "series": golden.latency.series, "percentile": 99},
               "percentile": {"kind": "threshold", "category": "latency", "series": golden.latency.series,
                              "reduce": "max"}}.get(golden.latency.type)  # a histogram's buckets make no one series
    learnable = [("latency", golden.latency.series, latency)] if latency else []
    learnable += [("saturation", item.series, {"kind": "saturation", "series": item.series, "reduce": "avg"})
                  for item in golden.saturation[:1]]
    if golden.errors and golden.errors.type == "ratio":
        learnable.append(("error ratio", golden.errors.series, {"kind": "threshold", "category": "errors",
                                                                "series": golden.errors.series, "reduce": "avg"}))
    found = []
    for signal, selector, rule in learnable:
        learned = _baseline(store, selector, start, end, quiet)
        if learned is None:
            continue
        threshold, median, count, weekly = learned
        name = _free_name(policy, f"{service}-{signal.replace(' ', '-')}-learned")
        seasonal = {"by_hour_of_week": weekly} if weekly else {}
        found.append(Candidate("new", {"name": name, **rule, "service": service, "above": threshold, **seasonal,
                                       "window": "5m", "for": "2m", "severity": "warning"}, None,
                               f"{why}; {signal} ({selector}) over 5m above {threshold:g}, the median {median:.3g} + "
                               f"6 robust deviations of {count:,} values over {format_duration(end - start)} outside "
                               "incidents" + ("; a bound for each hour of the week, from its own weeks of history"
                                              if weekly else " (a baseline by hour of the week needs 3 weeks of "
                                              "history: one bound for every hour)"), missed, [selector]))
    if golden.errors_rate:
        errors, traffic = golden.errors.series, golden.traffic.series
        found.append(Candidate("new", {"name": _free_name(policy, f"{service}-errors-learned"), "kind": "errors",
                                       "service": service, "errors": errors, "requests": traffic,
                                       "above": ERROR_RATIO, "window": "5m", "for": "2m", "severity": "warning"}, None,
                               f"{why}; the error ratio {errors} / {traffic} over 5m above {ERROR_RATIO:.0%}", missed,
                               [errors, traffic]))
    return found


def _baseline(store: SampleStore, selector: str, start, end, quiet) -> tuple | None:
    """A robust threshold for the series outside the ``quiet`` spans (see ``_robust``), its median
    and how many values it rests on; and with WEEKS_FOR_SEASONS weeks of history, one threshold
    for each hour of the week (Monday 00:00 UTC first), else None. None with fewer than 30 values."""
    ts, values = _values(store, selector, start, end, quiet)
    if values.size < 30:
        return None
    weekly = None
    if end - start >= timedelta(weeks=WEEKS_FOR_SEASONS):
        hours = ((ts // 3_600_000_000) + 72) % HOURS_OF_WEEK  # the epoch began on a Thursday: hour 72 of its week
        buckets = [values[hours == h] for h in range(HOURS_OF_WEEK)]
        if all(bucket.size >= 30 for bucket in buckets):
            weekly = [_robust(bucket) for bucket in buckets]
    return _robust(values), float(np.median(values)), values.size, weekly


def _robust(values: np.ndarray) -> float:
    """The median + BASELINE_WIDTH x 1.4826 x MAD (at least 5 % of the median as the deviation), to
    three significant digits."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return float(f"{median + BASELINE_WIDTH * MAD_SCALE * max(mad, abs(median) * 0.05):.3g}")


BURN_RATES = (("page", "1h", "5m", 14.4, "critical"), ("ticket", "6h", "30m", 6.0, "warning"))  # the SRE workbook's


def _burn_rate_rules(policy, service: str, objective: float, missed: list[int]) -> list[Candidate]:
    """The SRE workbook's multi-window burn-rate rules for the service's declared objective: 2 %
    of a 30-day budget in an hour (1h and 5m at 14.4) pages, 5 % in six hours (6h and 30m at 6)
    makes a ticket; over its error ratio (errors / traffic, else failed probe runs)."""
    golden = golden_signals(policy.rules.services, service)
    if golden.errors and not golden.errors_rate:
        return []  # a burn rate reads errors and requests as rates (an error ratio or a counter would mislead it)
    ratio = {"errors": golden.errors.series, "requests": golden.traffic.series} if golden.errors else {}
    series = list(ratio.values()) or [golden.success]
    return [Candidate("new", {"name": _free_name(policy, f"{service}-burn-rate-{what}"), "kind": "burn_rate",
                              "service": service, "objective": objective, "window": long, "short": short,
                              "factor": factor, "severity": severity, **ratio}, None,
                      f"{service} declares an objective of {objective:g}: the error budget burning {factor:g} times "
                      f"too fast over {long} and {short} ({what})", missed, series)
            for what, long, short, factor, severity in BURN_RATES]


def _tunings(rule, report: BacktestReport, policy) -> list[Candidate]:
    """The variant of ``rule`` with the fewest episodes that loses no recall, among higher
    thresholds and longer ``for``."""
    base = as_written(rule)
    base["for"] = format_duration(rule.for_)
    key = "above" if "above" in base else "threshold" if "threshold" in base else None
    variants = []
    if key is not None and isinstance(base[key], (int, float)):
        weekly = base.get("by_hour_of_week")
        variants += [({key: float(f"{base[key] * step:.3g}"),
                       **({"by_hour_of_week": [float(f"{b * step:.3g}") for b in weekly]} if weekly else {})},
                      f"{key} {base[key]:g} -> {base[key] * step:.3g}" + (" (each hour of the week's)" if weekly else ""))
                     for step in THRESHOLD_STEPS]
    longer = [max(rule.for_, FOR_BASE) * n for n in FOR_STEPS]
    variants += [({"for": format_duration(held)}, f"for {format_duration(rule.for_)} -> {format_duration(held)}")
                 for held in longer]
    if rule.kind != "burn_rate":  # its windows are the workbook's
        variants += [({"window": format_duration(rule.window * n)},
                      f"window {format_duration(rule.window)} -> {format_duration(rule.window * n)}")
                     for n in WINDOW_STEPS]
    name = rule.name if rule.name in policy.learned else _free_name(policy, f"{rule.name}-tuned")
    why = (f"{rule.name} fired {report.fires_per_day:g} times a day, {report.precision or 0:.0%} of its "
           f"{len(report.episodes)} episodes overlapping an incident")
    return [Candidate("tune", {**base, **change, "name": name}, rule.name, f"{why}; {what}",
                      report.incidents["caught"], [str(s) for s in rule.selectors().values()])
            for change, what in variants]


def as_written(rule) -> dict:
    """``rule`` as rules.yaml would hold it: the keys set, durations written 5m, 30s."""
    def written(value):
        if isinstance(value, timedelta):
            return format_duration(value)
        if isinstance(value, dict):
            return {k: written(v) for k, v in value.items()}
        return [written(v) for v in value] if isinstance(value, list) else value

    return written(rule.model_dump(by_alias=True, exclude_unset=True))


def _free_name(policy, name: str) -> str:
    """``name``, unless a hand-written rule has it (a learned rule of that name gets a new revision)."""
    hand = {r.name for r in policy.rules.resolved} - policy.learned
    return name if name not in hand else f"{name}-2"


def _values(store: SampleStore, selector: str, start, end,
            quiet: list[tuple[datetime, datetime]]) -> tuple[np.ndarray, np.ndarray]:
    """The times (microseconds) and values of the series ``selector`` names in [start, end],
    outside the ``quiet`` spans."""
    reader = RULE.validate_python({"name": "baseline", "kind": "threshold", "series": selector, "above": 0,
                                   "window": "1s"})
    window, _ = load_windows(store, [reader], end, since=start)
    ts, values = window.values(window.select(parse_selector(selector)), start, end)
    keep = np.ones(ts.size, bool)
    for since, until in quiet:
        keep &= (ts < int(since.timestamp() * 1e6)) | (ts > int(until.timestamp() * 1e6))
    return ts[keep], values[keep]


# --- the operator's decisions ---------------------------------------------------------------

def accept(engine: Engine, policy_dir: Path, suggestion_id: int, actor: str, reason: str, now: datetime,
           shadow: bool = False) -> int:
    """Write the suggestion's rule to learned-rules.yaml (in shadow: evaluated, opening no
    incident) and record the revision; return it."""
    with read_session(engine) as session:
        suggestion = rule_repo.suggestion(session, suggestion_id)
    if suggestion.status != SuggestionStatus.PENDING:
        raise WorkbenchError(f"suggestion {suggestion_id} is {suggestion.status}, not pending")
    rule = {**suggestion.rule, "shadow": True} if shadow else suggestion.rule
    with write_session(engine) as session:
        revision = rule_repo.add_revision(session, suggestion.name, rule, suggestion.id, actor, now,
                                          reason, suggestion.backtest.get("suggested", {}))
        rule_repo.decide_suggestion(session, suggestion.id, SuggestionStatus.ACCEPTED, actor, reason, now)
        write_learned(policy_dir, suggestion.name, rule)  # the ledger commits only if the file is written
    return revision


def reject(engine: Engine, suggestion_id: int, actor: str, reason: str, now: datetime) -> None:
    with write_session(engine) as session:
        if rule_repo.suggestion(session, suggestion_id).status != SuggestionStatus.PENDING:
            raise WorkbenchError(f"suggestion {suggestion_id} is not pending")
        rule_repo.decide_suggestion(session, suggestion_id, SuggestionStatus.REJECTED, actor, reason, now)


def rollback(engine: Engine, policy_dir: Path, name: str, revision: int, actor: str, reason: str,
             now: datetime) -> int:
    """Put revision ``revision`` of the learned rule ``name`` back in force (as a new revision);
    revision 0 is the state before the first: no such rule."""
    with write_session(engine) as session:
        if revision == 0:
            rule_repo.revision(session, name, 1)  # a learned rule of that name exists
            rule, suggestion_id, backtest = None, None, {}
        else:
            old = rule_repo.revision(session, name, revision)
            rule, suggestion_id, backtest = old.rule, old.suggestion_id, old.backtest
        new = rule_repo.add_revision(session, name, rule, suggestion_id, actor, now,
                                     f"rollback to revision {revision}: {reason}", backtest)
        write_learned(policy_dir, name, rule)
    return new


def revisions(engine: Engine, name: str) -> list[RuleRevision]:
    with read_session(engine) as session:
        return rule_repo.revisions(session, name)


def write_learned(policy_dir: Path, name: str, rule: dict | None) -> None:
    """learned-rules.yaml with ``rule`` as the rule ``name`` (or without it, when None): checked
    with the rest of the policy first, then written under a temporary name and renamed into place."""
    path = Path(policy_dir) / LEARNED
    current = yaml.safe_load(path.read_text()) if path.exists() else None
    rules = [r for r in (current or {}).get("rules", []) if r.get("name") != name]
    if rule is not None:
        rules.append(rule)
    text = ("# Detector rules learned from history and accepted by the operator (workbench rules accept).\n"
            "# Written by the workbench; every revision is kept in the ledger (workbench rules revisions NAME).\n"
            + yaml.safe_dump({"allow_empty": True, "rules": rules}, sort_keys=False, allow_unicode=True))
    with tempfile.TemporaryDirectory() as scratch:  # the whole policy, with the new file, must load
        for other in Path(policy_dir).glob("*.y*ml"):
            if other.name != LEARNED:
                (Path(scratch) / other.name).write_bytes(other.read_bytes())
        (Path(scratch) / LEARNED).write_text(text)
        try:
            load_policy(scratch)
        except PolicyError as exc:
            raise WorkbenchError(f"the learned rule would make the policy invalid: {exc}") from None
    temporary = path.with_name(f".{LEARNED}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
