"""Trends of a service: the rollups read for each range, each golden signal per bucket (probe
defaults and declared series), the previous period on this one's axis, and the bands of the
service's incidents, silences and maintenance windows, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ledger.db import write_session
from ledger.repo import incidents, silences
from ledger.rollups import Rollups
from ledger.samples import Sample, SampleStore
from ledger.silences import occurrences, recurrence
from ledger.tables import Silence
from ledger.trends import RANGES, SATURATION_LINES, Band, read_trends, resolution_for
from policies.rules import ServiceSignals
from policies.selectors import parse_matcher

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)  # a Sunday
NOW = T0 + timedelta(hours=2, minutes=2)  # 12:02: minutes up to 12:00 and hours up to 11:00 are rolled up
LATE = timedelta(seconds=20)
KEEP = {"1m": timedelta(days=35), "1h": timedelta(days=400)}
WEB = {"service": "shop", "target": "web", "kind": "http"}
API = {"service": "shop", "target": "api", "kind": "http"}
BOX = {"service": "shop", "target": "box", "kind": "host"}


def probe_minute(start: datetime, slow: float = 1.0) -> list[Sample]:
    """One minute of shop's probes: web and api every 10 s (web 10..60 ms, api 5 ms; web's first
    run of the minute fails), the host's CPU at 40 % and memory at 70 %."""
    out = []
    for i in range(6):
        at = start + timedelta(seconds=10 * i)
        out += [Sample("probe_success", WEB, 0.0 if i == 0 else 1.0, at),
                Sample("probe_duration_seconds", WEB, slow * 0.01 * (i + 1), at),
                Sample("probe_success", API, 1.0, at), Sample("probe_duration_seconds", API, 0.005, at),
                Sample("probe_value", {**BOX, "value": "CPU"}, 40.0, at),
                Sample("probe_value", {**BOX, "value": "MEMORY"}, 70.0, at)]
    return out


@pytest.fixture
def rollups(tmp_path) -> Rollups:
    """Shop's probes from 10:00 to 12:02, web twice as slow in the first hour, rolled up at 12:02."""
    store = SampleStore(tmp_path / "samples", now=lambda: NOW)
    for minute in range(122):
        store.append(probe_minute(T0 + timedelta(minutes=minute), slow=2.0 if minute < 60 else 1.0))
    store.flush()
    rolled = Rollups(store)
    rolled.maintain(LATE, KEEP)
    return rolled


def values(frame: pl.DataFrame, series: str, period: str = "current") -> list[float]:
    return [round(v, 6) for v in frame.filter((pl.col("series") == series) & (pl.col("period") == period))["value"]]


@pytest.mark.parametrize("range_key, resolution", [("1h", "1m"), ("6h", "1m"), ("24h", "1m"), ("7d", "1h"),
                                                   ("30d", "1h")])
def test_ranges_up_to_a_day_read_minute_rollups_and_longer_ones_hour_rollups(rollups, sqlite_engine, range_key,
                                                                             resolution):
    trends = read_trends(rollups, sqlite_engine, {}, "shop", range_key, NOW)
    assert resolution_for(RANGES[range_key]) == trends.resolution == resolution
    times = trends.signals["traffic"].current["ts"]
    step = timedelta(minutes=1) if resolution == "1m" else timedelta(hours=1)
    assert set(times.diff().drop_nulls()) == {step}
    aligned = NOW - RANGES[range_key] - (timedelta(0) if resolution == "1m" else timedelta(minutes=2))
    assert times.min() >= trends.since == aligned


def test_probe_signals_per_minute(rollups, sqlite_engine):
    signals = read_trends(rollups, sqlite_engine, {}, "shop", "1h", NOW).signals
    latency = signals["latency"].frame  # web's: 10..60 ms, above api's 5 ms
    assert (values(latency, "p50")[0], values(latency, "p95")[0], values(latency, "p99")[0]) == (35.0, 57.5, 59.5)
    assert len(values(latency, "p95")) == 59 and set(values(latency, "p95")) == {57.5}  # 11:02 to 12:00
    assert signals["traffic"].unit == "runs/min" and set(values(signals["traffic"].frame, "probe runs")) == {12.0}
    assert set(values(signals["errors"].frame, "error ratio")) == {round(1 / 12, 6)}
    saturation = signals["saturation"].frame
    assert sorted(saturation["series"].unique()) == ["CPU (box)", "MEMORY (box)"]
    assert set(values(saturation, "CPU (box)")) == {40.0} and set(values(saturation, "MEMORY (box)")) == {70.0}
    assert [signals[k].note for k in ("latency", "traffic", "errors", "saturation")] == [
        "the highest of 2 series in each bucket", "the sum of 2 series", "from 2 series", "2 series"]


def test_saturation_draws_the_series_with_the_highest_peaks(tmp_path, sqlite_engine):
    store = SampleStore(tmp_path / "samples", now=lambda: NOW)
    hosts = SATURATION_LINES + 3
    for minute in range(60):
        at = T0 + timedelta(hours=1, minutes=minute)
        store.append([Sample("probe_value", {**BOX, "target": f"host-{i:02d}", "value": "DISK"}, 10.0 * i, at)
                      for i in range(hosts)])
        if minute == 30:  # one peak of an otherwise idle disk: its minute's mean is 49.5, above host-04's 40
            store.append([Sample("probe_value", {**BOX, "target": "host-00", "value": "DISK"}, 99.0, at)])
    store.flush()
    rollups = Rollups(store)
    rollups.maintain(LATE, KEEP)
    saturation = read_trends(rollups, sqlite_engine, {}, "shop", "1h", NOW).signals["saturation"]
    drawn = sorted(saturation.frame["series"].unique())
    assert drawn == sorted(["DISK (host-00)", *(f"DISK (host-{i:02d})" for i in range(hosts - SATURATION_LINES + 1,
                                                                                      hosts))])
    assert saturation.note == f"the {SATURATION_LINES} of {hosts} series with the highest peaks"


def test_hour_rollups_give_the_percentiles_of_the_whole_hour(rollups, sqlite_engine):
    latency = read_trends(rollups, sqlite_engine, {}, "shop", "7d", NOW).signals["latency"].frame
    for series in ("p50", "p95", "p99"):
        assert latency.filter(pl.col("series") == series)["ts"].to_list() == [T0, T0 + timedelta(hours=1)]
    hour = pl.Series([2.0 * 0.01 * (i + 1) for i in range(6)] * 60)  # 10:00-11:00, web twice as slow
    assert values(latency, "p99")[0] == round(hour.quantile(0.99, interpolation="linear") * 1000, 6)


def test_the_previous_period_is_drawn_on_this_ones_axis(rollups, sqlite_engine):
    trends = read_trends(rollups, sqlite_engine, {}, "shop", "1h", NOW)  # 11:02-12:02, after 10:02-11:02
    latency = trends.signals["latency"].frame
    previous = latency.filter((pl.col("period") == "previous") & (pl.col("series") == "p50"))
    assert previous["at"].min() == T0 + timedelta(minutes=2) and previous["at"].max() == T0 + timedelta(minutes=61)
    assert (previous["ts"] - previous["at"]).unique().to_list() == [timedelta(hours=1)]
    assert values(latency, "p50", "previous")[:58] == [70.0] * 58  # web twice as slow before 11:00
    assert values(latency, "p50", "previous")[58:] == [35.0] * 2


def test_declared_signals(tmp_path, sqlite_engine):
    job = {"job": "shop", "instance": "a"}
    store = SampleStore(tmp_path / "samples", now=lambda: NOW)
    for second in range(0, 3600, 15):
        at = T0 + timedelta(hours=1, seconds=second)
        store.append([Sample("http_requests_per_second", job, 40.0, at),
                      Sample("http_requests_per_second", {**job, "instance": "b"}, 60.0, at),
                      Sample("http_errors_per_second", job, 5.0, at),
                      Sample("http_latency_seconds", job, 0.2, at),
                      Sample("db_pool_in_use_ratio", job, 0.25, at)])
    store.flush()
    rollups = Rollups(store)
    rollups.maintain(LATE, KEEP)
    declared = {"shop": ServiceSignals(latency='http_latency_seconds{job="shop"}',
                                       traffic='http_requests_per_second{job="shop"}',
                                       errors='http_errors_per_second{job="shop"}',
                                       saturation=['db_pool_in_use_ratio{job="shop"}'])}
    signals = read_trends(rollups, sqlite_engine, declared, "shop", "1h", NOW).signals
    assert signals["traffic"].unit == "req/s" and set(values(signals["traffic"].frame, "requests")) == {100.0}
    assert set(values(signals["errors"].frame, "error ratio")) == {0.05}
    assert set(values(signals["latency"].frame, "p99")) == {200.0}
    assert signals["saturation"].unit == "%" and \
        set(values(signals["saturation"].frame, 'db_pool_in_use_ratio{instance=a, job=shop}')) == {25.0}


def test_signals_as_users_have_them(tmp_path, sqlite_engine):
    """A histogram's buckets (p50/p95/p99 computed from them), a percentile series (as it is), a
    request counter (its increase per second, across a reset), an error ratio (as it is), and
    saturation in percent under its name."""
    job = {"job": "shop"}
    store = SampleStore(tmp_path / "samples", now=lambda: NOW)
    count = 0.0
    for second in range(0, 3600, 15):
        at = T0 + timedelta(hours=1, seconds=second)
        count = 0.0 if second == 1800 else count + 15 * 20.0  # 20 requests a second; the process restarts at 11:30
        buckets = {"0.1": 50.0, "0.25": 80.0, "0.5": 95.0, "1": 100.0, "+Inf": 100.0}
        store.append([*(Sample("http_request_duration_seconds_rate", {**job, "le": le}, rate, at)
                        for le, rate in buckets.items()),
                      Sample("http_request_duration_seconds_rate", {**job, "le": "junk"}, 7.0, at),
                      Sample("shop_latency_p95_seconds", job, 0.3, at),
                      Sample("http_requests_total", job, count, at),
                      Sample("shop_error_ratio", job, 0.02, at),
                      Sample("pool_used_percent", job, 35.0, at),
                      Sample("queue_fill_ratio", job, 0.5, at)])
    store.flush()
    rollups = Rollups(store)
    rollups.maintain(LATE, KEEP)
    declared = {"shop": ServiceSignals.model_validate({
        "latency": {"series": 'http_request_duration_seconds_rate{job="shop"}', "type": "histogram"},
        "traffic": {"series": "http_requests_total", "type": "counter"},
        "errors": {"series": "shop_error_ratio", "type": "ratio"},
        "saturation": [{"series": "pool_used_percent", "unit": "percent", "name": "database pool"},
                       {"series": "queue_fill_ratio", "name": "queue"}]})}
    signals = read_trends(rollups, sqlite_engine, declared, "shop", "1h", NOW).signals
    # rank 50 of 100 is the top of the first bucket; 95 the top of the third; 99 four fifths into the fourth
    assert (set(values(signals["latency"].frame, "p50")), set(values(signals["latency"].frame, "p95")),
            set(values(signals["latency"].frame, "p99"))) == ({100.0}, {500.0}, {900.0})
    traffic = signals["traffic"].current
    # 11:02 to 11:59 in range; the minute of the restart counts from 0 (900 requests in its 45 s)
    assert traffic.height == 58 and traffic.filter(pl.col("value") != 20.0).select("at", "value").rows() == [
        (T0 + timedelta(hours=1, minutes=30), 15.0)]
    assert set(values(signals["errors"].frame, "error ratio")) == {0.02}
    assert signals["errors"].note == "from 1 series, ratios: the highest"
    assert signals["latency"].note.startswith("computed from 6 bucket series as histogram_quantile does")
    assert set(values(signals["saturation"].frame, "database pool")) == {35.0}
    assert set(values(signals["saturation"].frame, "queue")) == {50.0}
    declared["shop"] = ServiceSignals.model_validate(
        {"latency": {"series": "shop_latency_p95_seconds", "type": "percentile", "quantile": 0.95}})
    latency = read_trends(rollups, sqlite_engine, declared, "shop", "1h", NOW).signals["latency"]
    assert set(latency.current["series"]) == {"p95"} and set(values(latency.frame, "p95")) == {300.0}


def test_a_service_without_samples_is_empty(rollups, sqlite_engine):
    trends = read_trends(rollups, sqlite_engine, {}, "billing", "24h", NOW)
    assert trends.empty and all(signal.frame.is_empty() for signal in trends.signals.values())
    assert not read_trends(rollups, sqlite_engine, {}, "shop", "24h", NOW).empty


def open_incident(engine, service: str, target: str, at: datetime, resolved: datetime | None = None) -> int:
    spec = incidents.FindingSpec(rule="probe:http", target=target, service=service, severity="critical",
                            summary=f"{target} failing", correlation_key=f"{service}/{target}")
    with write_session(engine) as session:
        incident = incidents.open_finding(session, spec, [], at).incident_id
        if resolved is not None:
            incidents.transition(session, incident, "resolved", "alice", "fixed", resolved)
    return incident


def add_silence(engine, matchers: list[str], starts: datetime, ends: datetime | None, kind: str = "silence",
                rule: dict | None = None) -> int:
    with write_session(engine) as session:
        return silences.add_silence(session, matchers=[parse_matcher(m).as_dict() for m in matchers], starts_at=starts,
                                ends_at=ends, author="alice", comment=f"{kind} test", now=T0, kind=kind,
                                recurrence=rule).id


def test_bands_of_the_services_incidents_silences_and_maintenance_windows(rollups, engine):
    at = T0.replace
    resolved = open_incident(engine, "shop", "web", at(hour=11, minute=10), resolved=at(hour=11, minute=20))
    still_open = open_incident(engine, "shop", "api", at(hour=11, minute=50))
    open_incident(engine, "shop", "box", at(hour=10, minute=0), resolved=at(hour=10, minute=30))  # before the range
    open_incident(engine, "db", "db-host", at(hour=11, minute=30))  # another service
    silence = add_silence(engine, ["service=shop"], at(hour=10, minute=30), at(hour=11, minute=5))
    by_target = add_silence(engine, ["target=web", "severity=critical"], at(hour=11, minute=30), at(hour=11, minute=40))
    nightly = add_silence(engine, ["service=shop"], T0 - timedelta(days=1), None, "maintenance",
                          recurrence("daily", "11:45", timedelta(minutes=10), "UTC"))
    add_silence(engine, ["service=db"], at(hour=11, minute=30), at(hour=11, minute=40))
    add_silence(engine, ["severity=warning"], at(hour=11, minute=30), at(hour=11, minute=40))

    bands = read_trends(rollups, engine, {}, "shop", "1h", NOW).bands
    since = at(hour=11, minute=2)
    assert bands == [
        Band(kind="silence", label=f"silence #{silence}: silence test", start=since, end=at(hour=11, minute=5)),
        Band(kind="incident", label=f"incident #{resolved} (critical)", start=at(hour=11, minute=10),
             end=at(hour=11, minute=20)),
        Band(kind="silence", label=f"silence #{by_target}: silence test", start=at(hour=11, minute=30),
             end=at(hour=11, minute=40)),
        Band(kind="maintenance", label=f"maintenance #{nightly}: maintenance test", start=at(hour=11, minute=45),
             end=at(hour=11, minute=55)),
        Band(kind="incident", label=f"incident #{still_open} (critical)", start=at(hour=11, minute=50), end=NOW),
    ]


def window(rule: dict, starts: datetime = T0 - timedelta(days=30), ends: datetime | None = None,
           expired: datetime | None = None) -> Silence:
    return Silence(kind="maintenance", matchers=[], starts_at=starts, ends_at=ends, recurrence=rule,
                   expired_at=expired, author="alice", comment="test", created_at=starts)


def test_occurrences_of_recurring_windows_within_a_range():
    weekend = window(recurrence("weekly", "23:00", timedelta(hours=2), "UTC", ["sat", "sun"]))
    week = occurrences(weekend, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    assert week == [(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),  # Sunday's
                    (datetime(2026, 3, 7, 23, 0, tzinfo=UTC), datetime(2026, 3, 8, 1, 0, tzinfo=UTC)),
                    (datetime(2026, 3, 8, 23, 0, tzinfo=UTC), datetime(2026, 3, 9, 0, 0, tzinfo=UTC))]
    berlin = window(recurrence("daily", "01:00", timedelta(hours=1), "Europe/Berlin"))  # CEST from the 29th, 02:00
    starts = [start for start, _ in occurrences(berlin, datetime(2026, 3, 28, tzinfo=UTC),
                                                datetime(2026, 3, 31, tzinfo=UTC))]
    assert starts == [datetime(2026, 3, 28, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
                      datetime(2026, 3, 29, 23, 0, tzinfo=UTC), datetime(2026, 3, 30, 23, 0, tzinfo=UTC)]
    ended = window(recurrence("daily", "12:00", timedelta(hours=2), "UTC"), ends=T0 + timedelta(days=1, hours=3),
                   expired=T0 + timedelta(hours=3))
    assert occurrences(ended, T0, T0 + timedelta(days=3)) == [(T0 + timedelta(hours=2), T0 + timedelta(hours=3))]
