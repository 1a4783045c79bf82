"""Detector rules as pure functions over a window of samples.

``evaluate(rule, window, now, past)`` gives, for each group of series (the rule's ``by``
labels), the value, whether the condition holds and the evidence a finding carries: the
query, the window, the threshold and the window's values. ``past`` holds the samples of
traffic rules' baseline windows. One evaluator per rule kind, registered in EVALUATORS.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from policies.expressions import evaluate as evaluate_expression
from policies.expressions import parse_expression
from policies.rules import (
    AbsenceRule,
    ErrorsRule,
    LatencyRule,
    LogSignatureRule,
    SaturationRule,
    ThresholdRule,
    TrafficRule,
)
from policies.schema import format_duration
from probes.windows import Series, SeriesWindow

EVIDENCE_POINTS = 60  # the latest values kept with a finding


@dataclass(frozen=True)
class Evaluation:
    group: dict[str, str]
    value: float | None  # None: no data, no verdict (the condition does not hold)
    active: bool
    evidence: dict


def evaluate(rule, window: SeriesWindow, now: datetime, past: SeriesWindow | None = None) -> list[Evaluation]:
    return EVALUATORS[rule.kind](rule, window, now, past or window)


def reduce(values: pl.Series, how: str) -> float | None:
    if values.is_empty():
        return None
    if how == "last":
        return float(values[-1])
    if how == "count":
        return float(values.len())
    if how.startswith("p"):
        return float(values.quantile(int(how[1:]) / 100, "linear"))
    return float({"avg": values.mean, "min": values.min, "max": values.max, "sum": values.sum}[how]())


def holds(value: float | None, op: str, threshold: float) -> bool:
    return value is not None and (value > threshold if op == ">" else value < threshold)


def _groups(by: list[str], series: list[Series]) -> dict[tuple, list[Series]]:
    groups: dict[tuple, list[Series]] = defaultdict(list)
    for s in series:
        groups[_key(by, s)].append(s)
    return groups


def _points(frame: pl.DataFrame) -> list[list]:
    tail = frame.tail(EVIDENCE_POINTS)
    return [[ts.isoformat(), round(value, 6)] for ts, value in zip(tail["ts"], tail["value"])]


def _evidence(query, window: timedelta, how: str, op: str, threshold: float | None, value: float | None,
              frame: pl.DataFrame, **extra) -> dict:
    return {"query": query, "window": format_duration(window), "reduce": how, "op": op,
            "threshold": threshold, "value": value, "points": _points(frame), **extra}


def _compare(rule, window: SeriesWindow, now: datetime, selector_text: str, how: str, op: str,
             threshold: float) -> list[Evaluation]:
    """One selector reduced over the window per group, against a bound."""
    selector = rule.selectors()["value"]
    since = now - rule.window
    out = []
    for key, series in _groups(rule.by, window.select(selector)).items():
        frame = window.values(series, since, now)
        value = reduce(frame["value"], how)
        out.append(Evaluation(dict(zip(rule.by, key)), value, holds(value, op, threshold),
                              _evidence(selector_text, rule.window, how, op, threshold, value, frame)))
    return out


def _threshold(rule: ThresholdRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    if isinstance(rule.series, str):
        return _compare(rule, window, now, rule.series, rule.reduce, rule.op, rule.threshold)
    tree = parse_expression(rule.expr, set(rule.series))
    since = now - rule.window
    per_name = {name: _groups(rule.by, window.select(selector)) for name, selector in rule.selectors().items()}
    out = []
    for key in sorted({key for groups in per_name.values() for key in groups}):
        frames = {name: window.values(groups.get(key, []), since, now) for name, groups in per_name.items()}
        values = {name: reduce(frame["value"], rule.reduce) for name, frame in frames.items()}
        value = evaluate_expression(tree, values)
        evidence = _evidence({"expr": rule.expr, **rule.series}, rule.window, rule.reduce, rule.op, rule.threshold,
                             value, pl.concat(frames.values()).sort("ts"), inputs=values)
        out.append(Evaluation(dict(zip(rule.by, key)), value, holds(value, rule.op, rule.threshold), evidence))
    return out


def _latency(rule: LatencyRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, rule.series, f"p{rule.percentile}", rule.op, rule.threshold)


def _saturation(rule: SaturationRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, rule.series, rule.reduce, rule.op, rule.threshold)


def _log_signature(rule: LogSignatureRule, window: SeriesWindow, now: datetime,
                   past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, str(rule.selectors()["value"]), "sum", ">", rule.above)


def _errors(rule: ErrorsRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    since = now - rule.window
    selectors = rule.selectors()
    per_role = {role: _groups(rule.by, window.select(selector)) for role, selector in selectors.items()}
    out = []
    for key in sorted({key for groups in per_role.values() for key in groups}):
        frames = {role: window.values(groups.get(key, []), since, now) for role, groups in per_role.items()}
        if "success" in frames:
            success = reduce(frames["success"]["value"], "avg")
            value, inputs = (None if success is None else 1 - success), {"probe_runs": frames["success"].height}
        else:
            errors, requests = (reduce(frames[r]["value"], "avg") for r in ("errors", "requests"))
            enough = requests is not None and requests > 0 and requests >= rule.min_requests
            value = errors / requests if enough and errors is not None else None
            inputs = {"errors": errors, "requests": requests}
        query = {role: str(selector) for role, selector in selectors.items()}
        evidence = _evidence(query, rule.window, "error ratio", ">", rule.above, value,
                             pl.concat(frames.values()).sort("ts"), inputs=inputs)
        out.append(Evaluation(dict(zip(rule.by, key)), value, holds(value, ">", rule.above), evidence))
    return out


def _traffic(rule: TrafficRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    selector = rule.selectors()["value"]
    since = now - rule.window
    then = now - rule.baseline
    out = []
    for key, series in _groups(rule.by, window.select(selector)).items():
        frame = window.values(series, since, now)
        value = reduce(frame["value"], "avg")
        baseline = None
        if rule.above is not None or rule.below is not None:
            op, threshold = (">", rule.above) if rule.above is not None else ("<", rule.below)
        else:
            older = past.values([s for s in past.select(selector) if _key(rule.by, s) == key], then - rule.window, then)
            baseline = reduce(older["value"], "avg")
            usable = baseline is not None and baseline > 0 and baseline >= rule.min_baseline
            op = "<" if rule.drop is not None else ">"
            threshold = (baseline * (1 - rule.drop) if rule.drop is not None else baseline * rule.spike) \
                if usable else None
        active = threshold is not None and holds(value, op, threshold)
        out.append(Evaluation(dict(zip(rule.by, key)), value, active,
                              _evidence(rule.series, rule.window, "avg", op, threshold, value, frame,
                                        baseline=baseline, baseline_offset=format_duration(rule.baseline))))
    return out


def _key(by: list[str], series: Series) -> tuple:
    return tuple(series.labels.get(label, "") for label in by)


def _absence(rule: AbsenceRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    selector = rule.selectors()["value"]
    groups = _groups(rule.by, window.select(selector))
    if not groups:
        empty = SeriesWindow.empty().values([])
        return [Evaluation({}, None, True, _evidence(rule.series, rule.lookback, "last sample", ">", None, None,
                                                     empty, absent=f"no series matches in the last "
                                                                   f"{format_duration(rule.lookback)}"))]
    out = []
    for key, series in groups.items():
        frame = window.values(series, now - rule.lookback, now)
        if frame.is_empty():
            continue  # older than the lookback: no longer known
        age = (now - frame["ts"][-1]).total_seconds()
        threshold = rule.window.total_seconds()
        out.append(Evaluation(dict(zip(rule.by, key)), age, age > threshold,
                              _evidence(rule.series, rule.window, "seconds since the last sample", ">", threshold,
                                        age, frame)))
    return out


EVALUATORS: dict[str, Callable[..., list[Evaluation]]] = {
    "threshold": _threshold,
    "latency": _latency,
    "errors": _errors,
    "traffic": _traffic,
    "saturation": _saturation,
    "absence": _absence,
    "log_signature": _log_signature,
}
