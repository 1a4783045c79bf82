"""One detector cycle: read the window of samples the rules need, evaluate every rule (pure
functions, detectors/evaluators.py), step each group's state (detectors/state.py) and act on the
ledger in one transaction; then release suppressed findings whose silence, maintenance window
or parent incident has ended. The worker runs it on ``noise.evaluation_interval``;
``workbench probe run --once`` runs it after the probes."""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from detectors.evaluators import Evaluation, evaluate
from detectors.state import INACTIVE, RuleStatus, Signal, step_rule
from detectors.window import SeriesWindow
from ledger.db import utcnow, write_session
from ledger.repo import incidents
from ledger.repo import rules as rule_states
from ledger.samples import SampleStore
from ledger.tables import RuleState
from policies.rules import AbsenceRule, TrafficRule
from policies.schema import format_duration
from policies.templates import FindingLabels, render

log = logging.getLogger("workbench.detectors")


@dataclass(frozen=True)
class DetectionOutcome:
    rules: int
    groups: int
    samples: int
    signals: dict[str, int]
    released: int
    evaluate_seconds: float
    write_seconds: float


def run_rules(engine: Engine, store: SampleStore, policy, now: datetime | None = None) -> DetectionOutcome:
    """One cycle over the enabled rules. A rule that raises is left out of this cycle, logged and
    counted as the signal ``error``; the others are evaluated and recorded. A ledger error fails the cycle."""
    now = now or utcnow()
    rules = [rule for rule in policy.rules.resolved if rule.enabled]
    t0 = time.perf_counter()
    window, past = load_windows(store, rules, now)
    signals: dict[str, int] = {}
    results = {}
    for rule in rules:
        with _rule_errors(rule, signals):
            results[rule.name] = evaluate(rule, window, now, past)
    t1 = time.perf_counter()
    with write_session(engine) as session:
        states = rule_states.rule_states(session)
        for rule in rules:
            if rule.name in results:
                with _rule_errors(rule, signals):
                    _apply_rule(session, rule, results[rule.name], states, now, policy.rules.noise, signals)
        known = {rule.name for rule in rules}
        for (name, _), row in states.items():
            if name not in known:
                _forget(session, row, now)
        released = incidents.release_suppressed(session, now)
    return DetectionOutcome(len(rules), sum(map(len, results.values())), window.size, signals, released,
                            t1 - t0, time.perf_counter() - t1)


@contextmanager
def _rule_errors(rule, signals: dict[str, int]):
    """One rule's error (not the ledger's): logged, counted as the signal ``error``, and the cycle goes on."""
    try:
        yield
    except SQLAlchemyError:
        raise
    except Exception as exc:
        signals["error"] = signals.get("error", 0) + 1
        log.error("rule %s failed and is left out of this cycle: %s: %s", rule.name, type(exc).__name__, exc)


def _apply_rule(session, rule, evaluations: list[Evaluation], states: dict, now: datetime, noise,
                signals: dict[str, int]) -> None:
    by_key = {group_key(e.group): e for e in evaluations}
    for (name, key), row in states.items():  # groups that stopped reporting: no verdict
        if name == rule.name and key not in by_key and row.state != INACTIVE:
            by_key[key] = Evaluation(row.labels, None, False, {"absent": "no samples in the window"})
    for key, evaluation in by_key.items():
        signal = _apply(session, rule, states.get((rule.name, key)), key, evaluation, now, noise)
        signals[signal.value] = signals.get(signal.value, 0) + 1


def load_windows(store: SampleStore, rules: list, now: datetime,
                 since: datetime | None = None) -> tuple[SeriesWindow, SeriesWindow]:
    """The samples of the series the rules read, over the longest window; and those of the
    traffic rules' baseline windows. With ``since``: those of every evaluation from ``since`` to
    ``now`` (a backtest's)."""
    if not rules:
        return SeriesWindow.empty(), SeriesWindow.empty()
    since = since or now
    span = max(rule.lookback if isinstance(rule, AbsenceRule) else rule.window for rule in rules)
    window = _read(store, rules, [(since - span, now)])
    spans = [(since - rule.baseline - rule.window, now - rule.baseline) for rule in rules
             if isinstance(rule, TrafficRule) and (rule.drop is not None or rule.spike is not None)]
    return window, _read(store, rules, spans) if spans else window


def _read(store: SampleStore, rules: list, spans: list[tuple[datetime, datetime]]) -> SeriesWindow:
    """DuckDB reads, filters and sorts the samples (in parallel, in C++), so only numbers
    cross into Python: series id, time, value; then the labels of each series once."""
    selectors = [s for rule in rules for s in rule.selectors().values()]
    names = sorted({s.name for s in selectors if s.name})
    where = " OR ".join("ts BETWEEN ? AND ?" for _ in spans)
    params = [moment for span in spans for moment in span]
    if all(s.name for s in selectors):
        where = f"({where}) AND name IN ({', '.join('?' for _ in names)})"
        params += names
    since, until = min(s for s, _ in spans), max(u for _, u in spans)
    sid = "hash(name || chr(31) || labels)"
    points = store.query(f"SELECT {sid} AS sid, epoch_us(ts) AS t, value FROM samples WHERE {where} ORDER BY sid, t",
                         since, until, params)
    series = store.query(f"SELECT DISTINCT {sid} AS sid, name, labels FROM samples WHERE {where}", since, until, params)
    shared = series.filter(pl.col("sid").is_duplicated())
    if not shared.is_empty():  # DuckDB's hash() is fast, not collision-free: split those series apart
        ids = shared["sid"].unique().to_list()
        split = store.query(f"SELECT {sid} AS old, name, labels, epoch_us(ts) AS t, value FROM samples "
                            f"WHERE ({where}) AND {sid} IN ({', '.join('?' for _ in ids)})",
                            since, until, [*params, *ids])
        split = split.with_columns(pl.struct("name", "labels").rank("dense").cast(pl.UInt64).alias("rank"))
        split = split.with_columns((pl.lit(2**63, pl.UInt64) + pl.col("rank")).alias("sid"))  # no DuckDB hash
        points = pl.concat([points.filter(~pl.col("sid").is_in(ids)),
                            split.select("sid", "t", "value")]).sort("sid", "t")
        series = pl.concat([series.filter(~pl.col("sid").is_in(ids)),
                            split.select("sid", "name", "labels").unique("sid")])
    return SeriesWindow(points, series)


def group_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _apply(session, rule, row: RuleState | None, key: str, evaluation: Evaluation, now: datetime, noise) -> Signal:
    before = RuleStatus() if row is None else RuleStatus(
        row.state, row.active, row.pending_since, row.firing_since, row.last_active_at,
        tuple(datetime.fromisoformat(t) for t in row.flips), row.flapping)
    after, signal = step_rule(before, evaluation.active, now, for_=rule.for_, keep_firing_for=rule.keep_firing_for,
                              flap_limit=noise.flap_limit, flap_window=noise.flap_window)
    if row is None and after == RuleStatus():
        return signal  # never held: nothing worth a row
    summary = _summary(rule, evaluation)  # the texts first: a template that fails leaves nothing half-written
    spec = _finding_spec(rule, evaluation, summary) if signal is Signal.FIRING else None
    if row is None:
        row = rule_states.add_rule_state(session, rule.name, key, evaluation.group)
    evidence = incidents.RuleEvidence(summary + _standing(rule, signal, after), evaluation.full_evidence(), now)
    if spec is not None:
        row.finding_id = incidents.open_finding(session, spec, [evidence], now).id
    elif row.finding_id is not None and signal is Signal.STILL_FIRING:
        incidents.finding_failed_again(session, row.finding_id, evidence, now)
    elif row.finding_id is not None and signal is Signal.RECOVERING:
        incidents.finding_recovering(session, row.finding_id, evidence, now, f"{rule.name}: condition stopped holding; "
                                f"keeps firing for {format_duration(rule.keep_firing_for)}")
    elif row.finding_id is not None and signal is Signal.RECOVERED:
        incidents.finding_recovered(session, row.finding_id, evidence, now, f"{rule.name}: condition no longer holds",
                               f"{rule.name} stopped firing")
        row.finding_id = None
    if after.flapping and not before.flapping and row.finding_id is not None:
        incidents.note(session, row.finding_id, f"{rule.name} is flapping ({len(after.flips)} changes in "
                                           f"{format_duration(noise.flap_window)}): held open until it settles", now)
    rule_states.save_rule_state(row, state=after.state, active=after.active, pending_since=after.pending_since,
                               firing_since=after.firing_since, last_active_at=after.last_active_at,
                               flapping=after.flapping, flips=list(after.flips), value=evaluation.value,
                               evaluated_at=now)
    return signal


def _forget(session, row: RuleState, now: datetime) -> None:
    """A rule removed from the policy: its open finding recovers and its state goes."""
    if row.finding_id is not None:
        evidence = incidents.RuleEvidence(f"{row.rule} removed from the policy", {}, now)
        incidents.finding_recovered(session, row.finding_id, evidence, now, f"{row.rule} is no longer in the policy",
                               f"{row.rule} removed from the policy")
    rule_states.delete_rule_state(session, row)


def _finding_spec(rule, evaluation: Evaluation, summary: str) -> incidents.FindingSpec:
    fields = _fields(rule, evaluation)
    return incidents.FindingSpec(
        rule=f"rule:{rule.name}", target=fields["target"], service=fields["service"], severity=rule.severity,
        summary=summary, correlation_key=render(rule.correlation_key, fields),
        labels={**rule.labels, **evaluation.group, "category": rule.kind_category,
                **({"shadow": "true"} if rule.shadow else {})}, parent=rule.parent,
    )


def _fields(rule, evaluation: Evaluation) -> dict:
    group = evaluation.group
    return {"rule": rule.name, "service": rule.service or group.get("service") or "rules",
            "target": group.get("target") or rule.name, "value": evaluation.value,
            "threshold": evaluation.evidence.get("threshold"), "window": format_duration(rule.window),
            "severity": rule.severity, "category": rule.kind_category, "labels": FindingLabels({**rule.labels, **group})}


def _summary(rule, evaluation: Evaluation) -> str:
    fields = _fields(rule, evaluation)
    if rule.summary:
        return render(rule.summary, fields)
    e = evaluation.evidence
    if "absent" in e:
        return f"{rule.name}: {e['absent']}"
    where = ", ".join(f"{k}={v}" for k, v in evaluation.group.items() if v) or fields["service"]
    unit = UNITS.get(rule.kind, "")
    return (f"{rule.name} ({where}): {e['reduce']} over the last {e['window']} was {_number(evaluation.value)}{unit} "
            f"({e['op']} {_number(e['threshold'])}{unit})")


UNITS = {"latency": " s"}  # the unit of a rule kind's value, where the kind fixes it


def _standing(rule, signal: Signal, after: RuleStatus) -> str:
    """What the value means for the rule's finding, as its evidence says it: once the condition
    stops holding, the finding is held by keep_firing_for until a stated time, then recovers."""
    if signal is Signal.RECOVERING and after.last_active_at is not None:
        until = after.last_active_at + rule.keep_firing_for
        return (f": no longer holds; held by keep_firing_for ({format_duration(rule.keep_firing_for)}) "
                f"until {until:%H:%M:%S} UTC")
    if signal is Signal.RECOVERED:
        return ": no longer holds; recovered"
    return ""


def _number(value) -> str:
    return "none" if value is None else f"{value:.4g}"
