"""Rollups: each bucket's count, sum, min, max, last and percentiles equal a Polars computation
over the raw samples; only complete buckets are rolled up, once their late samples are in; a
pass run twice, resumed after a stop or killed mid-compaction never counts a sample twice;
retention works per resolution; a reader in another process always sees whole minutes; the
worker keeps them."""

import asyncio
import multiprocessing
import random
import shutil
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from prometheus_client import generate_latest

from app.worker.jobs import Worker
from ledger.db import open_ledger, sqlite_url, utcnow
from ledger.rollups import Rollups
from ledger.samples import Sample, SampleStore, series_labels
from policies.holder import PolicyHolder

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LATE = timedelta(seconds=20)
KEEP = {"1m": timedelta(days=35), "1h": timedelta(days=400)}
COLUMNS = ["ts", "name", "labels", "count", "sum", "min", "max", "last", "p50", "p95", "p99"]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def noisy_samples(start: datetime, seconds: int, seed: int = 7) -> list[Sample]:
    """Three series (two targets' latency, one host's CPU) at irregular times, every few seconds."""
    rng = random.Random(seed)
    series = [("probe_duration_seconds", {"service": "shop", "target": "web", "kind": "http"}),
              ("probe_duration_seconds", {"service": "shop", "target": "api", "kind": "http"}),
              ("probe_value", {"service": "shop", "target": "box", "kind": "host", "value": "CPU"})]
    out, at = [], 0.0
    while at < seconds:
        name, labels = rng.choice(series)
        out.append(Sample(name, labels, round(rng.uniform(0, 100), 3), start + timedelta(seconds=at)))
        at += rng.uniform(0.5, 6)
    return out


def expected(samples: list[Sample], every: str, until: datetime) -> pl.DataFrame:
    """The rollup rows computed by Polars from the raw samples in the buckets that end by ``until``."""
    raw = pl.DataFrame({"ts": [s.at for s in samples], "name": [s.name for s in samples],
                        "labels": [series_labels(s.labels) for s in samples],
                        "value": [s.value for s in samples]}).sort("ts")
    step = pl.duration(minutes=1) if every == "1m" else pl.duration(hours=1)
    return (raw.with_columns(pl.col("ts").dt.truncate(every).alias("bucket"))
            .filter(pl.col("bucket") + step <= until)
            .group_by("bucket", "name", "labels").agg(
                pl.len().cast(pl.Int64).alias("count"), pl.col("value").sum().alias("sum"),
                pl.col("value").min().alias("min"), pl.col("value").max().alias("max"),
                pl.col("value").last().alias("last"),
                *(pl.col("value").quantile(q, interpolation="linear").alias(f"p{round(q * 100)}")
                  for q in (0.5, 0.95, 0.99)))
            .rename({"bucket": "ts"}).select(COLUMNS).sort("ts", "name", "labels"))


def assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.height == want.height
    for column in COLUMNS:
        if want[column].dtype == pl.Float64:
            assert (got[column] - want[column]).abs().max() < 1e-9, column
        else:
            assert got[column].to_list() == want[column].to_list(), column


def rolled(rollups: Rollups, resolution: str) -> pl.DataFrame:
    frame = rollups.stores[resolution].query(f"SELECT {', '.join(COLUMNS)} FROM rollups")
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).sort("ts", "name", "labels")


def store_at(tmp_path, clock: Clock, samples: list[Sample]) -> tuple[SampleStore, Rollups]:
    store = SampleStore(tmp_path / "samples", now=clock)
    store.append(samples)
    store.flush()
    return store, Rollups(store)


def test_rollups_equal_a_polars_computation_over_the_raw_samples(tmp_path):
    samples = noisy_samples(T0, 3 * 3600 + 600)
    clock = Clock(T0 + timedelta(hours=3, minutes=10))
    _, rollups = store_at(tmp_path, clock, samples)
    written = rollups.maintain(LATE, KEEP)

    # at 13:10, 20 s allowed for late samples: minutes up to 13:08 (13:09 ends too recently), hours up to 12:00
    for resolution, until in (("1m", T0 + timedelta(hours=3, minutes=9)), ("1h", T0 + timedelta(hours=3))):
        want = expected(samples, resolution, until)
        assert written[resolution] == want.height
        assert_same(rolled(rollups, resolution), want)
    assert rolled(rollups, "1m")["ts"].max() == T0 + timedelta(hours=3, minutes=8)
    assert rolled(rollups, "1h")["ts"].max() == T0 + timedelta(hours=2)


def test_a_bucket_waits_for_its_late_samples(tmp_path):
    clock = Clock(T0 + timedelta(minutes=5, seconds=10))
    minute = [Sample("probe_success", {"service": "shop", "target": "web"}, 1.0, T0 + timedelta(minutes=4, seconds=s))
              for s in (0, 30)]
    store, rollups = store_at(tmp_path, clock, minute[:1])
    rollups.maintain(LATE, KEEP)  # 10:04 ended 10 s ago: its late samples may still come
    assert rolled(rollups, "1m").is_empty()

    store.append(minute[1:])  # flushed 15 s after 10:04 ended
    store.flush()
    clock.now += timedelta(seconds=15)
    rollups.maintain(LATE, KEEP)
    assert rolled(rollups, "1m")["count"].to_list() == [2]


def test_running_again_or_after_a_stop_never_counts_twice(tmp_path):
    samples = noisy_samples(T0, 2 * 3600)
    clock = Clock(T0 + timedelta(minutes=50))
    store, rollups = store_at(tmp_path, clock, samples)
    rollups.maintain(LATE, KEEP)
    assert rollups.maintain(LATE, KEEP) == {"1m": 0, "1h": 0}

    clock.now = T0 + timedelta(hours=2, minutes=5)  # the worker was stopped for 75 minutes
    (rollups.stores["1m"].root / "day=2026-03-01" / "part-1-2-0123456789ab.parquet.tmp").write_bytes(b"PAR1")
    rollups.maintain(LATE, KEEP)
    again = Rollups(SampleStore(tmp_path / "fresh", now=clock), tmp_path / "fresh-rollups")
    again.samples.append(samples)
    again.samples.flush()
    again.maintain(LATE, KEEP)
    for resolution in ("1m", "1h"):
        assert_same(rolled(rollups, resolution), rolled(again, resolution))
    assert int(rolled(rollups, "1h")["count"].sum()) == sum(1 for s in samples if s.at < T0 + timedelta(hours=2))


def test_a_compaction_killed_after_its_rename_is_finished_without_doubling(tmp_path):
    clock = Clock(T0 + timedelta(minutes=30))
    store, rollups = store_at(tmp_path, clock, noisy_samples(T0, 3 * 3600))
    minutes = rollups.stores["1m"]
    for _ in range(5):  # one pass a minute until past 11:00
        rollups.roll("1m", LATE, KEEP["1m"])
        clock.now += timedelta(minutes=10)
    day = minutes.root / "day=2026-03-01"
    parts = sorted(day.glob("part-*.parquet"))
    kept = tmp_path / "kept"
    kept.mkdir()
    for part in parts:
        shutil.copy2(part, kept / part.name)
    before = minutes.query("SELECT sum(count) AS n, count(*) AS rows FROM rollups").row(0)

    assert minutes.compact() == 1  # hour 10 merged; then, as if killed before the parts were deleted:
    for part in kept.iterdir():
        shutil.copy2(part, day / part.name)
    assert minutes.query("SELECT sum(count) AS n, count(*) AS rows FROM rollups").row(0) == before
    minutes.compact()
    assert minutes.query("SELECT sum(count) AS n, count(*) AS rows FROM rollups").row(0) == before
    assert sorted(p.name for p in day.glob("*.parquet")) == ["hour-10.parquet"] + \
        sorted(p.name for p in parts if int(p.name.split("-")[1]) >= int((T0 + timedelta(hours=1)).timestamp() * 1000))


def test_retention_is_per_resolution(tmp_path):
    clock = Clock(T0 + timedelta(days=3))  # 2026-03-04 10:00
    store, rollups = store_at(tmp_path, clock, [])
    for day in range(3):  # an hour of samples at 10:00 on March 1, 2 and 3
        store.append(noisy_samples(T0 + timedelta(days=day), 3600, seed=day))
        store.flush()
    keep = {"1m": timedelta(days=1), "1h": timedelta(days=10)}
    rollups.maintain(LATE, keep)
    assert sorted({t.day for t in rolled(rollups, "1m")["ts"]}) == [3]  # older minutes are never rolled up
    assert sorted({t.day for t in rolled(rollups, "1h")["ts"]}) == [1, 2, 3]

    clock.now = datetime(2026, 3, 13, 9, 0, tzinfo=UTC)
    rollups.maintain(LATE, keep)
    assert rolled(rollups, "1m").is_empty() and not any(rollups.stores["1m"].root.iterdir())
    assert sorted({t.day for t in rolled(rollups, "1h")["ts"]}) == [3]
    assert [p.name for p in rollups.stores["1h"].root.iterdir()] == ["day=2026-03-03"]


def _read_totals(root: str, rounds: int, ready, results) -> None:
    minutes = Rollups(SampleStore(f"{root}/samples")).stores["1m"]
    seen = []
    ready.set()
    try:
        for _ in range(rounds):
            seen.append(int(minutes.query("SELECT coalesce(sum(count), 0) AS n FROM rollups")["n"][0]))
    except Exception as exc:  # reported to the test rather than lost in the child
        results.put(f"reader broke: {exc}")
        return
    results.put(seen)


def test_a_reader_in_another_process_sees_whole_minutes_while_rollups_are_written(tmp_path):
    samples = noisy_samples(T0, 4 * 3600)
    clock = Clock(T0)
    store, rollups = store_at(tmp_path, clock, samples)
    times = [s.at for s in samples]
    prefixes = {sum(1 for at in times if at < T0 + timedelta(minutes=m)) for m in range(4 * 60 + 1)}
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    reader = context.Process(target=_read_totals, args=(str(tmp_path), 300, ready, results))
    reader.start()
    assert ready.wait(timeout=60)
    while clock.now < T0 + timedelta(hours=4, minutes=1):  # a pass every 3 minutes: writes and compactions
        clock.now += timedelta(minutes=3)
        rollups.maintain(LATE, KEEP)
    seen = results.get(timeout=120)
    reader.join(timeout=60)
    assert isinstance(seen, list), seen
    assert seen == sorted(seen), "totals only grow: no row is read twice or lost mid-compaction"
    assert set(seen) <= prefixes, "each read sees whole minutes, from the first on"
    assert rolled(rollups, "1m")["count"].sum() == len(samples)


def test_the_worker_rolls_up_when_it_starts(tmp_path, policy_dir):
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    samples = noisy_samples(hour, 3600)
    store = SampleStore(tmp_path / "var" / "samples")
    store.append(samples)
    store.flush()
    worker = Worker(PolicyHolder(policy_dir("allow_empty: true\ntargets: []\n"), now=lambda: None),
                    open_ledger(sqlite_url(tmp_path / "var")), store)

    async def run_until_rolled() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if "workbench_rollup_seconds_count 1" in generate_latest(worker.registry).decode():
                break
        stop.set()
        await task

    asyncio.run(run_until_rolled())
    assert "workbench_rollup_seconds_count 1" in generate_latest(worker.registry).decode()
    assert rolled(worker.rollups, "1h")["count"].sum() == rolled(worker.rollups, "1m")["count"].sum() == len(samples)
    assert (tmp_path / "var" / "rollups" / "1m").is_dir()


@pytest.mark.parametrize("resolution", ["1m", "1h"])
def test_an_empty_store_has_nothing_to_roll_up(tmp_path, resolution):
    rollups = Rollups(SampleStore(tmp_path / "samples", now=Clock(T0)))
    assert rollups.roll(resolution, LATE, KEEP[resolution]) == 0
    assert rolled(rollups, resolution).is_empty()
