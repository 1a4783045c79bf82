"""Forensics over a real incident's activity (tests/activity.py): the incident whole, the samples
and golden signals around it, what else happened then, the fleet's views, and the post-mortem;
on SQLite and PostgreSQL, which give the same frames for the same activity."""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl
import pytest

from ledger import forensics
from ledger.db import open_ledger, sqlite_url
from ledger.postmortem import duration_text, postmortem
from tests.activity import END, SECRET, T0, fill
from tests.conftest import _reset_postgres

RANGE = (T0 - timedelta(hours=1), END)


@pytest.fixture
def activity(engine, tmp_path, demo_target, receiver):
    return engine, fill(engine, tmp_path / "var", demo_target, receiver)


def test_the_incident_whole(activity):
    engine, act = activity
    record = forensics.incident_record(engine, act.incident_id, now=END)
    summary = record.summary
    assert (summary["state"], summary["acknowledged_by"], summary["seconds_to_acknowledge"],
            summary["seconds_to_resolve"]) == ("resolved", "alice", 60.0, 270.0)
    moves = record.timeline.filter(pl.col("to_state").is_not_null())
    assert moves["to_state"].to_list() == ["observed", "contained", "recovering", "resolved"]
    assert record.findings.select("rule", "target", "occurrences").rows() == [("probe:http", "shop-web", 4)]
    failing = record.evidence.filter(pl.col("summary").str.contains(" failed"))
    assert failing["at"].to_list() == [T0, T0 + timedelta(seconds=30)]
    assert '"actual":"503"' in failing["checks"][0]
    drafted = record.hypotheses.filter(pl.col("stage") == "draft")
    refined = record.hypotheses.filter(pl.col("stage") == "refinement")
    assert drafted["hypothesis"].to_list()[:2] == ["recent-change", "server-errors"]
    assert refined.filter(pl.col("rank") == 1)["hypothesis"].to_list() == ["target-itself"]
    assert record.actions.select("action", "status", "decided_by", "verification").rows() == [
        ("fault-off", "succeeded", "bob", "passed")]
    assert record.silences.select("comment", "covered_from", "covered_until").rows() == [
        ("shop is being worked on", T0 + timedelta(seconds=90), T0 + timedelta(seconds=300))]
    assert record.notifications.select("channel", "category", "status").rows() == [("hook", "firing", "sent")]
    assert record.decisions.select("task", "expected", "actual", "tokens").rows() == [
        ("hypothesis", "local", "local", 120)]
    assert forensics.milestones(record).select("milestone", "seconds").rows() == [
        ("began", None), ("detected", 30.0), ("acknowledged", 60.0), ("contained", 210.0), ("resolved", 270.0)]


def test_alerts_keep_their_secrets_masked(activity):
    engine, act = activity
    (alert,) = forensics.alerts(engine, act.alert_incident_id).iter_rows(named=True)
    assert alert["alertname"] == "PaymentsErrors" and "token=***" in alert["annotations"]
    everything = forensics.incident_record(engine, act.alert_incident_id, now=END)
    for frame in (everything.incident, everything.timeline, everything.evidence, everything.alerts):
        assert SECRET not in str(frame.rows())


def test_samples_around_it_raw_and_rolled_up(activity):
    engine, act = activity
    raw = forensics.samples_around(engine, act.store, act.incident_id, before=timedelta(minutes=5),
                                   after=timedelta(minutes=5))
    runs = raw.filter(pl.col("name") == "probe_success")
    assert runs["ts"].min() == T0 - timedelta(minutes=4, seconds=30) and runs["ts"].max() == T0 + timedelta(minutes=10)
    assert runs.filter(pl.col("value") == 0)["target"].value_counts(sort=True).rows() == [("shop-web", 4),
                                                                                          ("shop-api", 2)]
    minutes = forensics.samples_around(engine, act.store, act.incident_id, before=timedelta(minutes=5),
                                       after=timedelta(minutes=5), resolution="1m")
    success = minutes.filter((pl.col("name") == "probe_success") & (pl.col("ts") == T0))
    assert success.select("target", "count", "sum").rows() == [("shop-web", 2, 0.0)]
    assert minutes.filter(pl.col("name") == "probe_success")["count"].sum() == runs.height


def test_golden_signals_around_it_as_the_trends_page_reads_them(activity):
    engine, act = activity
    signals = forensics.golden_signals_around(engine, act.store, act.policy.rules.services, act.incident_id,
                                              before=timedelta(minutes=5), after=timedelta(minutes=5))
    errors = signals.filter((pl.col("signal") == "errors") & (pl.col("period") == "current")).sort("ts")
    by_minute = dict(zip(errors["ts"], [round(v, 4) for v in errors["value"]]))
    assert [by_minute[T0 + timedelta(minutes=m)] for m in (-1, 0, 1, 2, 3, 5)] == [0.0, 1.0, 1.0, 0.6667, 0.0, 0.0]
    assert set(signals["service"]) == {"shop"} and set(signals["signal"]) >= {"latency", "traffic", "errors"}


def test_what_else_happened_at_the_same_time(activity):
    engine, act = activity
    others = forensics.concurrent_incidents(engine, act.incident_id)
    assert others.select("id", "service").rows() == [(act.alert_incident_id, "payments")]
    alerts = forensics.concurrent_alerts(engine, act.incident_id)
    assert alerts.select("alertname", "incident_id").rows() == [("PaymentsErrors", act.alert_incident_id)]


def test_fleet_views(activity):
    engine, act = activity
    assert forensics.incidents_by_service_and_rule(engine, *RANGE).rows() == [
        ("payments", "alert:PaymentsErrors", 1, 1), ("shop", "probe:http", 1, 1)]
    times = forensics.response_times(engine, *RANGE)
    assert times.rows() == [("payments", 1, 0, 0, None, None), ("shop", 1, 1, 1, 60.0, 270.0)]
    spans = forensics.time_in_state(engine, *RANGE)
    mine = forensics.state_spans(engine, *RANGE).filter(pl.col("incident_id") == act.incident_id)
    assert mine.select("state", "seconds").rows() == [("observed", 210.0), ("contained", 30.0), ("recovering", 30.0)]
    assert set(spans["state"]) == {"observed", "contained", "recovering"}
    noisy = {(row["rule"], row["target"]): row for row in forensics.noise(engine, *RANGE).iter_rows(named=True)}
    assert (noisy["probe:http", "shop-api"]["episodes"], noisy["probe:http", "shop-api"]["suppressed_share"]) == (1, 1.0)
    assert noisy["probe:http", "shop-web"]["incidents"] == 1
    assert forensics.model_cost(engine, *RANGE).select("task", "actual", "calls", "tokens").rows() == [
        ("hypothesis", "local", 1, 120)]


def test_the_postmortem_states_the_incidents_numbers(activity):
    engine, act = activity
    text = postmortem(engine, act.incident_id, now=END)
    assert text.startswith(f"# Post-mortem: incident #{act.incident_id}: shop-web failing: [STATUS] == 200 -> got 503")
    for section in ("## Summary", "## Impact", "## Timeline", "## Detection", "## Cause", "## Actions",
                    "## Follow-ups"):
        assert f"\n{section}\n" in text
    assert "| detected | 2026-03-01 12:00:30 UTC | time to detect | 30s |" in text
    assert "| acknowledged | 2026-03-01 12:01:30 UTC | time to acknowledge | 1m |" in text
    assert "| resolved | 2026-03-01 12:05:00 UTC | time to resolve | 4m 30s |" in text
    assert "- shop was affected for 4m 30s" in text and "- shop-web: 4 failed run(s) of probe:http" in text
    assert "1. **" in text and "(confidence 0.60, rule): The process fails." in text
    assert "| #1 | fault-off | containment | succeeded | bob | passed |" in text
    assert SECRET not in text


def test_durations_read_as_people_write_them():
    assert [duration_text(s) for s in (None, 0, 30, 60, 270, 3700)] == ["-", "0s", "30s", "1m", "4m 30s", "1h 1m 40s"]


MEASURED = [  # what the activity measures on the wall clock: run times, latencies, one-time approval ids
    (re.compile(r"after \d+\.\d+s"), "after Ns"), (re.compile(r"approval [0-9a-f]{16,}"), "approval ID"),
    (re.compile(r'"duration_ms":[0-9.e-]+'), '"duration_ms":N'), (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
]


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame without what the clock measured: text normalised, measured numbers and wall-clock
    times (the verification's probe run, the delivery) dropped."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    frame = frame.with_columns(pl.col(c).map_elements(normalised, return_dtype=pl.String) for c in text)
    wall = [c for c in ("latency_ms", "sent_at", "approval_id") if c in frame.columns]
    frame = frame.drop(wall)
    if "at" in frame.columns and "kind" in frame.columns:  # evidence: the verification's run is now
        frame = frame.filter(pl.col("at") < END)
    return frame


def normalised(text: str) -> str:
    for pattern, replacement in MEASURED:
        text = pattern.sub(replacement, text)
    return text


def every_frame(engine, act) -> dict[str, pl.DataFrame]:
    record = forensics.incident_record(engine, act.incident_id, now=END)
    frames = {name: getattr(record, name) for name in record.__dataclass_fields__}
    frames |= {"milestones": forensics.milestones(record),
               "concurrent": forensics.concurrent_incidents(engine, act.incident_id, now=END),
               "concurrent alerts": forensics.concurrent_alerts(engine, act.incident_id, now=END),
               "by rule": forensics.incidents_by_service_and_rule(engine, *RANGE),
               "response": forensics.response_times(engine, *RANGE),
               "states": forensics.state_spans(engine, *RANGE), "noise": forensics.noise(engine, *RANGE),
               "cost": forensics.model_cost(engine, *RANGE).drop("mean_latency_ms"),
               "samples": forensics.samples_around(engine, act.store, act.incident_id, resolution="1m"),
               "signals": forensics.golden_signals_around(engine, act.store, act.policy.rules.services,
                                                          act.incident_id)}
    return {name: comparable(frame) for name, frame in frames.items()}


def test_sqlite_and_postgresql_give_the_same_frames(tmp_path, postgres_database, demo_target, receiver):
    _reset_postgres(postgres_database)
    found = []
    for name, url in (("sqlite", sqlite_url(tmp_path / "sqlite" / "var")), ("postgresql", postgres_database)):
        engine = open_ledger(url)
        try:
            found.append(every_frame(engine, fill(engine, tmp_path / name / "var", demo_target, receiver)))
        finally:
            engine.dispose()
    sqlite, postgresql = found
    assert sqlite["timeline"].height == 11 and sqlite["samples"].height > 0
    for name in sqlite:
        assert sqlite[name].equals(postgresql[name]), f"{name} differs:\n{sqlite[name]}\n{postgresql[name]}"


def test_a_services_health_and_error_budget(activity):
    engine, act = activity
    days = forensics.daily_health(engine, act.store, act.policy.rules.services, "shop", T0 - timedelta(days=30), END)
    (day,) = days.iter_rows(named=True)  # 11:00: 20 runs, all good; 12:00: 40, 6 failed
    assert day["day"] == T0.replace(hour=0) and round(day["availability"], 6) == 0.9
    assert round(day["p95_ms"], 6) == 41.9
    budget = forensics.error_budget(days, objective=0.99).row(0, named=True)
    assert round(budget["bad_share"], 6) == 0.1 and round(budget["budget_spent"], 6) == 10.0
    assert budget["budget_left"] < 0, "6 bad runs of 60 overspend a 99% objective tenfold"
    burn = forensics.budget_burn(days, objective=0.99)
    assert round(burn["spent"][0], 6) == 10.0
