"""Detector rules as pure functions over a window of samples.

``evaluate(rule, window, now, past)`` gives, for each group of series (the rule's ``by``
labels), the value, whether the condition holds and the evidence a finding carries: the
query, the window, the threshold and the window's values. ``past`` holds the samples of
traffic rules' baseline windows. One evaluator per rule kind, registered in EVALUATORS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.window import SeriesWindow, merge
from policies.expressions import evaluate as evaluate_expression
from policies.expressions import parse_expression
from policies.rules import (
    AbsenceRule,
    BurnRateRule,
    ErrorsRule,
    LatencyRule,
    LogSignatureRule,
    SaturationRule,
    ThresholdRule,
    TrafficRule,
)
from policies.schema import format_duration

EVIDENCE_POINTS = 60  # the latest values kept with a finding


Points = tuple[np.ndarray, np.ndarray]  # times (microseconds since the epoch) and values
NO_POINTS: Points = (np.empty(0, np.int64), np.empty(0, np.float64))


@dataclass(frozen=True)
class Evaluation:
    group: dict[str, str]
    value: float | None  # None: no data, no verdict (the condition does not hold)
    active: bool
    evidence: dict  # query, window, reduction, threshold, value
    points: Points = field(default=NO_POINTS, compare=False, repr=False)  # the window's latest values

    def full_evidence(self) -> dict:
        """The evidence with the window's latest values, as a finding keeps it."""
        ts, values = self.points
        return {**self.evidence, "points": [
            [datetime.fromtimestamp(t / 1e6, UTC).isoformat(), round(float(v), 6)]
            for t, v in zip(ts[-EVIDENCE_POINTS:].tolist(), values[-EVIDENCE_POINTS:].tolist())]}


def evaluate(rule, window: SeriesWindow, now: datetime, past: SeriesWindow | None = None) -> list[Evaluation]:
    return EVALUATORS[rule.kind](rule, window, now, past or window)


def reduce(values: np.ndarray, how: str) -> float | None:
    """The values (in time order) reduced to one; None when there are none."""
    if values.size == 0:
        return None
    if how == "last":
        return float(values[-1])
    if how == "count":
        return float(values.size)
    if how.startswith("p"):
        return percentile(values, int(how[1:]) / 100)
    return float({"avg": np.mean, "min": np.min, "max": np.max, "sum": np.sum}[how](values))


def percentile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (its default, linear method), to the last bit, at a fraction of
    its cost on the few hundred values of a window: two partitions instead of its general machinery."""
    index = q * (values.size - 1)
    low = int(index)
    high = min(low + 1, values.size - 1)
    ordered = np.partition(values, (low, high, values.size - 1))  # a NaN sorts last, and makes the answer NaN
    if np.isnan(ordered[-1]):
        return float("nan")
    a, b, t = ordered[low], ordered[high], index - low
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # numpy's _lerp


def holds(value: float | None, op: str, threshold: float) -> bool:
    return value is not None and (value > threshold if op == ">" else value < threshold)


def _evidence(query, window: timedelta, how: str, op: str, threshold: float | None, value: float | None,
              **extra) -> dict:
    return {"query": query, "window": format_duration(window), "reduce": how, "op": op,
            "threshold": threshold, "value": value, **extra}


def _compare(rule, window: SeriesWindow, now: datetime, selector_text: str, how: str, op: str,
             threshold: float) -> list[Evaluation]:
    """One selector reduced over the window per group, against a bound."""
    selector = rule.selectors()["value"]
    since = now - rule.window
    out = []
    for key, series in window.groups(selector, rule.by).items():
        points = window.values(series, since, now)
        value = reduce(points[1], how)
        out.append(Evaluation(dict(zip(rule.by, key)), value, holds(value, op, threshold),
                              _evidence(selector_text, rule.window, how, op, threshold, value), points))
    return out


def _threshold(rule: ThresholdRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    if isinstance(rule.series, str):
        return _compare(rule, window, now, rule.series, rule.reduce, rule.op, rule.bound(now))
    tree = parse_expression(rule.expr, set(rule.series))
    since = now - rule.window
    per_name = {name: window.groups(selector, rule.by) for name, selector in rule.selectors().items()}
    out = []
    for key in sorted({key for groups in per_name.values() for key in groups}):
        points = {name: window.values(groups.get(key, []), since, now) for name, groups in per_name.items()}
        values = {name: reduce(p[1], rule.reduce) for name, p in points.items()}
        value = evaluate_expression(tree, values)
        evidence = _evidence({"expr": rule.expr, **rule.series}, rule.window, rule.reduce, rule.op, rule.bound(now),
                             value, inputs=values)
        out.append(Evaluation(dict(zip(rule.by, key)), value, holds(value, rule.op, rule.bound(now)), evidence,
                              merge(list(points.values()))))
    return out


def _latency(rule: LatencyRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, rule.series, f"p{rule.percentile}", rule.op, rule.bound(now))


def _saturation(rule: SaturationRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, rule.series, rule.reduce, rule.op, rule.bound(now))


def _log_signature(rule: LogSignatureRule, window: SeriesWindow, now: datetime,
                   past: SeriesWindow) -> list[Evaluation]:
    return _compare(rule, window, now, str(rule.selectors()["value"]), "sum", ">", rule.above)


def _error_ratios(rule: ErrorsRule, window: SeriesWindow, now: datetime, span) -> dict[tuple, tuple]:
    """Each group's error ratio over ``span`` up to ``now`` (None without enough requests), with
    its inputs and points: errors / requests, or the share of failed probe runs."""
    since = now - span
    per_role = {role: window.groups(selector, rule.by) for role, selector in rule.selectors().items()}
    ratios = {}
    for key in sorted({key for groups in per_role.values() for key in groups}):
        points = {role: window.values(groups.get(key, []), since, now) for role, groups in per_role.items()}
        if "success" in points:
            success = reduce(points["success"][1], "avg")
            value, inputs = (None if success is None else 1 - success), {"probe_runs": points["success"][1].size}
        else:
            errors, requests = (reduce(points[r][1], "avg") for r in ("errors", "requests"))
            enough = requests is not None and requests > 0 and requests >= rule.min_requests
            value = errors / requests if enough and errors is not None else None
            inputs = {"errors": errors, "requests": requests}
        ratios[key] = (value, inputs, merge(list(points.values())))
    return ratios


def _errors(rule: ErrorsRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    query = {role: str(selector) for role, selector in rule.selectors().items()}
    return [Evaluation(dict(zip(rule.by, key)), value, holds(value, ">", rule.above),
                       _evidence(query, rule.window, "error ratio", ">", rule.above, value, inputs=inputs), points)
            for key, (value, inputs, points) in _error_ratios(rule, window, now, rule.window).items()]


def _burn_rate(rule: BurnRateRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    """The long window's burn rate (error ratio over the budget); active when both windows burn
    faster than ``factor``."""
    budget = 1 - rule.objective
    query = {role: str(selector) for role, selector in rule.selectors().items()}
    short = _error_ratios(rule, window, now, rule.short)
    out = []
    for key, (ratio, inputs, points) in _error_ratios(rule, window, now, rule.window).items():
        brief = short.get(key, (None,))[0]
        burn = None if ratio is None else ratio / budget
        active = holds(ratio, ">", rule.factor * budget) and holds(brief, ">", rule.factor * budget)
        evidence = _evidence(query, rule.window, "burn rate", ">", rule.factor, burn, inputs=inputs,
                             short_window=format_duration(rule.short),
                             short_burn_rate=None if brief is None else brief / budget, objective=rule.objective)
        out.append(Evaluation(dict(zip(rule.by, key)), burn, active, evidence, points))
    return out


def _traffic(rule: TrafficRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    selector = rule.selectors()["value"]
    since = now - rule.window
    then = now - rule.baseline
    out = []
    for key, series in window.groups(selector, rule.by).items():
        points = window.values(series, since, now)
        value = reduce(points[1], "avg")
        baseline = None
        if rule.above is not None or rule.below is not None:
            op, threshold = (">", rule.above) if rule.above is not None else ("<", rule.below)
        else:
            older = past.values(past.groups(selector, rule.by).get(key, []), then - rule.window, then)
            baseline = reduce(older[1], "avg")
            usable = baseline is not None and baseline > 0 and baseline >= rule.min_baseline
            op = "<" if rule.drop is not None else ">"
            threshold = (baseline * (1 - rule.drop) if rule.drop is not None else baseline * rule.spike) \
                if usable else None
        active = threshold is not None and holds(value, op, threshold)
        out.append(Evaluation(dict(zip(rule.by, key)), value, active,
                              _evidence(rule.series, rule.window, "avg", op, threshold, value,
                                        baseline=baseline, baseline_offset=format_duration(rule.baseline)), points))
    return out


def _absence(rule: AbsenceRule, window: SeriesWindow, now: datetime, past: SeriesWindow) -> list[Evaluation]:
    """Each group's age of its last sample; when no series has a sample in the lookback, one
    evaluation that holds (nothing to watch is the absence)."""
    selector = rule.selectors()["value"]
    out = []
    for key, series in window.groups(selector, rule.by).items():
        points = window.values(series, now - rule.lookback, now)
        if points[0].size == 0:
            continue  # older than the lookback (or newer than now): not known at this moment
        age = now.timestamp() - points[0][-1] / 1e6
        threshold = rule.window.total_seconds()
        out.append(Evaluation(dict(zip(rule.by, key)), age, age > threshold,
                              _evidence(rule.series, rule.window, "seconds since the last sample", ">", threshold,
                                        age), points))
    return out or [Evaluation({}, None, True, _evidence(rule.series, rule.lookback, "last sample", ">", None, None,
                                                        absent=f"no series matches in the last "
                                                               f"{format_duration(rule.lookback)}"))]


EVALUATORS: dict[str, Callable[..., list[Evaluation]]] = {
    "threshold": _threshold,
    "latency": _latency,
    "errors": _errors,
    "burn_rate": _burn_rate,
    "traffic": _traffic,
    "saturation": _saturation,
    "absence": _absence,
    "log_signature": _log_signature,
}
