"""Detector rules as pure functions over small frames of samples."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from detectors.evaluators import evaluate, percentile, reduce
from detectors.window import SeriesWindow
from ledger.samples import series_labels
from policies.rules import Rule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULE = TypeAdapter(Rule)


def rule(**fields):
    return RULE.validate_python({"name": "r", **fields})


def window(*series) -> SeriesWindow:
    """``series``: (name, labels, [(seconds before NOW, value), ...])."""
    rows = [(NOW - timedelta(seconds=ago), name, series_labels(labels), float(value))
            for name, labels, points in series for ago, value in points]
    return SeriesWindow.of(pl.DataFrame(rows, schema={"ts": pl.Datetime("us", "UTC"), "name": pl.String,
                                                   "labels": pl.String, "value": pl.Float64}, orient="row"))


WEB = {"service": "shop", "target": "web"}
API = {"service": "shop", "target": "api"}


def by_target(evaluations):
    return {e.group.get("target", ""): (round(e.value, 6) if e.value is not None else None, e.active)
            for e in evaluations}


@pytest.mark.parametrize("how,expected", [
    ("last", 4.0), ("avg", 2.5), ("min", 1.0), ("max", 4.0), ("sum", 10.0), ("count", 4.0), ("p50", 2.5),
    ("p99", 3.97),
])
def test_reduce(how, expected):
    assert reduce(np.array([1.0, 2.0, 3.0, 4.0]), how) == pytest.approx(expected)


def test_reduce_of_nothing_is_no_value():
    assert reduce(np.array([]), "avg") is None


def test_latency_percentile_per_group_within_the_window_only():
    w = window(("probe_duration_seconds", WEB, [(10, 0.9), (20, 0.8), (30, 0.1), (400, 5.0)]),
               ("probe_duration_seconds", API, [(10, 0.1), (20, 0.2)]))
    r = rule(kind="latency", series="probe_duration_seconds", percentile=50, above=0.5, by=["target"], window="2m")
    assert by_target(evaluate(r, w, NOW)) == {"web": (0.8, True), "api": (0.15, False)}


def test_the_evidence_holds_the_query_window_threshold_and_values():
    w = window(("probe_duration_seconds", WEB, [(10, 0.9), (20, 0.8)]))
    r = rule(kind="latency", series='probe_duration_seconds{target="web"}', above=0.5, window="1m")
    [e] = evaluate(r, w, NOW)
    assert e.evidence["query"] == 'probe_duration_seconds{target="web"}'
    assert (e.evidence["window"], e.evidence["reduce"], e.evidence["op"], e.evidence["threshold"]) == \
        ("1m", "p99", ">", 0.5)
    assert e.full_evidence()["points"] == [[(NOW - timedelta(seconds=20)).isoformat(), 0.8],
                                           [(NOW - timedelta(seconds=10)).isoformat(), 0.9]]


def test_selector_matchers_pick_the_series():
    w = window(("cpu", {"host": "a", "mode": "user"}, [(5, 0.95)]), ("cpu", {"host": "a", "mode": "idle"}, [(5, 0.05)]),
               ("cpu", {"host": "b", "mode": "user"}, [(5, 0.5)]))
    r = rule(kind="saturation", series='cpu{mode!="idle"}', above=0.9, by=["host"])
    assert {e.group["host"]: e.active for e in evaluate(r, w, NOW)} == {"a": True, "b": False}


@pytest.mark.parametrize("errors,requests,expected", [
    ([1, 1], [10, 10], (0.1, True)),
    ([0, 0], [10, 10], (0.0, False)),
    ([1, 1], [0, 0], (None, False)),     # no traffic: no verdict
])
def test_error_ratio_of_two_rate_series(errors, requests, expected):
    w = window(("http_errors", WEB, [(10, errors[0]), (20, errors[1])]),
               ("http_requests", WEB, [(10, requests[0]), (20, requests[1])]))
    r = rule(kind="errors", errors="http_errors", requests="http_requests", above=0.05, by=["target"])
    assert by_target(evaluate(r, w, NOW)) == {"web": expected}


def test_error_ratio_from_probe_runs_without_rate_series():
    w = window(("probe_success", WEB, [(10, 0), (20, 1), (30, 0), (40, 1)]), ("probe_success", API, [(10, 1)]))
    r = rule(kind="errors", service="shop", above=0.25, by=["target"])
    assert by_target(evaluate(r, w, NOW)) == {"web": (0.5, True), "api": (0.0, False)}


def test_min_requests_withholds_a_verdict_on_thin_traffic():
    w = window(("e", WEB, [(10, 1)]), ("q", WEB, [(10, 2)]))
    r = rule(kind="errors", errors="e", requests="q", above=0.1, min_requests=5)
    assert [(e.value, e.active) for e in evaluate(r, w, NOW)] == [(None, False)]


def test_threshold_on_an_expression_over_named_series():
    w = window(("queue_depth", WEB, [(10, 80)]), ("queue_capacity", WEB, [(10, 100)]),
               ("queue_depth", API, [(10, 10)]), ("queue_capacity", API, [(10, 100)]))
    r = rule(kind="threshold", series={"depth": "queue_depth", "capacity": "queue_capacity"},
             expr="depth / capacity * 100", reduce="last", above=75, by=["target"])
    assert by_target(evaluate(r, w, NOW)) == {"web": (80.0, True), "api": (10.0, False)}


def test_an_expression_missing_one_series_has_no_value():
    w = window(("queue_depth", WEB, [(10, 80)]))
    r = rule(kind="threshold", series={"d": "queue_depth", "c": "queue_capacity"}, expr="d / c", above=0.5)
    assert [(e.value, e.active) for e in evaluate(r, w, NOW)] == [(None, False)]


@pytest.mark.parametrize("test,now_rate,expected_active", [
    ({"drop": 0.5}, 4.0, True),       # 4 < 10 x 0.5
    ({"drop": 0.5}, 6.0, False),
    ({"spike": 3}, 31.0, True),       # 31 > 10 x 3
    ({"spike": 3}, 29.0, False),
    ({"below": 5}, 4.0, True),
])
def test_traffic_against_the_same_window_a_day_earlier(test, now_rate, expected_active):
    day = 86400
    w = window(("rps", WEB, [(10, now_rate), (20, now_rate), (day + 10, 10), (day + 20, 10)]))
    r = rule(kind="traffic", series="rps", window="1m", baseline="1d", **test)
    [e] = evaluate(r, w, NOW)
    assert (e.value, e.active) == (now_rate, expected_active)


def test_traffic_without_a_baseline_gives_no_verdict():
    w = window(("rps", WEB, [(10, 0.0)]))
    [e] = evaluate(rule(kind="traffic", series="rps", drop=0.5, window="1m"), w, NOW)
    assert e.active is False and e.evidence["baseline"] is None


def test_absence_fires_for_a_series_that_stopped_reporting():
    w = window(("probe_success", WEB, [(400, 1), (500, 1)]), ("probe_success", API, [(5, 1)]),
               ("probe_success", {"service": "shop", "target": "old"}, [(9000, 1)]))
    r = rule(kind="absence", series="probe_success", window="5m", lookback="1h", by=["target"])
    assert by_target(evaluate(r, w, NOW)) == {"web": (400.0, True), "api": (5.0, False)}  # "old": forgotten


def test_absence_of_any_matching_series():
    [e] = evaluate(rule(kind="absence", series='probe_success{target="gone"}'), window(), NOW)
    assert e.active and e.evidence["absent"] == "no series matches in the last 1h"


def test_absence_of_every_series_older_than_the_lookback():
    """Series the window holds (it spans what the longest rule needs) but none within this rule's
    lookback: as absent as no series at all."""
    w = window(("probe_success", WEB, [(9000, 1)]))
    [e] = evaluate(rule(kind="absence", series="probe_success", window="5m", lookback="1h"), w, NOW)
    assert e.active and e.group == {} and e.evidence["absent"] == "no series matches in the last 1h"


def test_log_signature_counts_over_the_window():
    labels = {"service": "shop", "target": "app-log", "signature": "oom"}
    w = window(("log_signature_matches", labels, [(10, 2), (20, 1), (900, 50)]))
    r = rule(kind="log_signature", target="app-log", signature="oom", above=2, window="5m")
    assert [(e.value, e.active) for e in evaluate(r, w, NOW)] == [(3.0, True)]


def test_a_thousand_series_share_one_sorted_window():
    w = window(*[("probe_duration_seconds", {"service": "s", "target": f"t{i}"}, [(10, i / 1000), (20, i / 1000)])
                 for i in range(1000)])
    r = rule(kind="latency", series="probe_duration_seconds", above=0.9, by=["target"])
    firing = sorted(e.group["target"] for e in evaluate(r, w, NOW) if e.active)
    assert firing == [f"t{i}" for i in range(901, 1000)]


@pytest.mark.parametrize("text", ['m{service="s1"}', 'm{service="s1", target!="t3"}', 'm{service="nope"}',
                                  'm{target=~"t[12]"}', 'm{service=""}', "m", 'other{service="s1"}'])
def test_selection_through_the_label_index_equals_a_full_scan(text):
    from policies.selectors import parse_selector
    w = window(*[("m", {"service": f"s{i % 3}", "target": f"t{i}"}, [(5, i)]) for i in range(9)],
               ("m", {"target": "bare"}, [(5, 1)]), ("other", {"service": "s1"}, [(5, 1)]))
    selector = parse_selector(text)
    scanned = [s for s in w.series if selector.matches(s.name, s.labels)]
    assert sorted(s.offset for s in w.select(selector)) == sorted(s.offset for s in scanned)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(allow_infinity=False, width=64), min_size=1, max_size=60),
       st.sampled_from([50, 90, 95, 99]))
def test_percentile_is_numpys_to_the_last_bit(values, p):
    expected = float(np.quantile(np.array(values), p / 100))
    got = percentile(np.array(values), p / 100)
    assert got == expected or (np.isnan(got) and np.isnan(expected))


@pytest.mark.parametrize("errors, expected", [
    (lambda ago: 2.0, (20.0, True)),                           # 2 % errors for the hour: both windows burn 20x
    (lambda ago: 2.0 if ago <= 300 else 0.0, (1.967, False)),  # only the last 5 minutes: the hour has not burnt
    (lambda ago: 0.0 if ago <= 300 else 2.0, (18.033, False)),  # the hour burnt, but it stopped 5 minutes ago
])
def test_burn_rate_needs_both_windows(errors, expected):
    """Objective 0.999: a budget of 0.1 % errors; 14.4 times that is 1.44 %."""
    minutes = range(0, 3601, 60)
    w = window(("errors", WEB, [(ago, errors(ago)) for ago in minutes]), ("requests", WEB, [(ago, 100) for ago in minutes]))
    [e] = evaluate(rule(kind="burn_rate", service="shop", objective=0.999, errors="errors", requests="requests"), w, NOW)
    assert (round(e.value, 3), e.active) == (pytest.approx(expected[0], abs=0.001), expected[1])
    assert e.evidence["threshold"] == 14.4 and e.evidence["short_window"] == "5m"


def test_a_burn_rate_rule_takes_no_bound_of_its_own():
    with pytest.raises(ValueError, match="leave above out"):
        rule(kind="burn_rate", service="shop", objective=0.999, above=0.1)
    with pytest.raises(ValueError, match="short must be shorter than window"):
        rule(kind="burn_rate", service="shop", objective=0.999, window="5m", short="1h")


def test_a_bound_for_each_hour_of_the_week():
    """NOW is a Sunday at 12:00 UTC: hour 6 x 24 + 12 = 156 of the week."""
    w = window(("latency", WEB, [(10, 0.5)]))
    weekly = [0.0] * 168

    def active(bound_now: float) -> bool:
        weekly[156] = bound_now
        r = rule(kind="threshold", series="latency", reduce="max", above=0.1, by_hour_of_week=weekly, window="1m")
        [e] = evaluate(r, w, NOW)
        assert e.evidence["threshold"] == bound_now
        return e.active

    assert active(0.4) and not active(0.6)
    with pytest.raises(ValueError, match="by_hour_of_week holds 168 bounds"):
        rule(kind="threshold", series="latency", above=0.1, by_hour_of_week=[0.1] * 167)
