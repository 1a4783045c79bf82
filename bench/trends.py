#!/usr/bin/env python3
"""Trends and rollups, measured in one run: the Trends query from the rollups beside the same
answer from the raw samples, and what keeping the rollups costs the worker.

    .venv/bin/python bench/trends.py [--series 1000] [--days 60] [--minute-days 14] [--targets 10000]

Everything is written under one temporary folder, removed on exit; every loop is bounded by
its sizes. It measures:

1. query: ``--series`` (1,000) series of one service ("shop": 1/5 of them http targets with
   ``probe_success`` and ``probe_duration_seconds``, 1/5 hosts with ``probe_value`` CPU, MEMORY and
   DISK), one sample a minute each, for ``--days`` (60: the 30-day range and the 30 days before
   it), generated with Polars straight into the samples store's layout (compacted hour files);
   rolled up by ``ledger.rollups.Rollups`` (per-hour over every day, per-minute over the last
   ``--minute-days``). Then ``ledger.trends.read_trends`` for every range from both resolutions
   (the switch point), and the 30-day answer (four signals, this period and the one before,
   per hour; saturation for the series with the highest peaks) computed by DuckDB from the raw
   samples, as the peer; both answers are compared.
2. maintenance: ``--targets`` (10,000) targets probed once a minute, 6 samples a run (as an http
   probe writes), flushed every 5 s as the worker does (12 parts a minute), for an hour;
   ``Rollups.maintain`` run once a minute of that ingest as the worker's job does (roll up,
   compact, retention), and the hour's rollup at the hour: wall and CPU seconds per pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import duckdb
import numpy as np
import polars as pl

from ledger.db import open_ledger, sqlite_url
from ledger.rollups import Rollups
from ledger.samples import SCHEMA, SampleStore, series_labels
from ledger.trends import RANGES, SATURATION_LINES, read_trends, resolution_for
from policies.schema import SettingsFile

END = datetime(2026, 3, 31, tzinfo=UTC)  # the generated data ends here; "now" is a little later
LATE = timedelta(seconds=20)  # the worker's allowance with 10 s probe timeouts and a 5 s flush
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
RAW_PEER = """
WITH s AS (
    SELECT make_timestamptz(epoch_us(ts) // 3600000000 * 3600000000) AS bucket, name, labels, value
    FROM samples WHERE ts >= $first AND ts < $until AND service = 'shop'
), saturation AS (
    SELECT bucket, labels, avg(value) AS value FROM s
    WHERE name = 'probe_value' AND json_extract_string(labels, '$.kind') = 'host'
      AND json_extract_string(labels, '$.value') IN ('CPU', 'MEMORY', 'DISK')
    GROUP BY bucket, labels
), top AS (
    SELECT labels FROM saturation WHERE bucket >= $since GROUP BY labels ORDER BY max(value) DESC LIMIT $lines
)
SELECT 'latency' AS signal, bucket, unnest(['p50', 'p95', 'p99']) AS series,
       unnest([max(q[1]), max(q[2]), max(q[3])]) * 1000 AS value
FROM (SELECT bucket, labels, quantile_cont(value, [0.5, 0.95, 0.99]) AS q FROM s
      WHERE name = 'probe_duration_seconds' GROUP BY bucket, labels) GROUP BY bucket
UNION ALL
SELECT 'traffic', bucket, 'probe runs', count(*) / 60 FROM s WHERE name = 'probe_success' GROUP BY bucket
UNION ALL
SELECT 'errors', bucket, 'error ratio', 1 - sum(value) / count(*) FROM s WHERE name = 'probe_success' GROUP BY bucket
UNION ALL
SELECT 'saturation', bucket, labels, value FROM saturation WHERE labels IN (SELECT labels FROM top)
"""


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def measured(work: Callable[[], object]) -> tuple[object, float, float]:
    """What ``work`` returns, its wall seconds and the CPU seconds of this process (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def median_of(runs: int, work: Callable[[], object], budget: float = 3.0) -> tuple[object, float, float]:
    """The median of ``runs`` runs, or of fewer once they have taken ``budget`` seconds."""
    results = [measured(work)]
    while len(results) < runs and sum(r[1] for r in results) < budget:
        results.append(measured(work))
    return results[-1][0], statistics.median(r[1] for r in results), statistics.median(r[2] for r in results)


def megabytes(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e6


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def print_machine() -> None:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    print(f"machine: nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {model}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {platform.platform()}")
    print(f"python {platform.python_version()}; duckdb {duckdb.__version__}, polars {pl.__version__}, "
          f"streamlit {version_of('streamlit')}")


# ------------------------------------------------------------------------------------------
# generated samples
# ------------------------------------------------------------------------------------------
def service_series(count: int, rng: np.random.Generator) -> pl.DataFrame:
    """``count`` series of service shop: http targets (success, duration) and hosts (CPU,
    MEMORY, DISK), each probed at its own second of the minute."""
    rows = []
    for i in range(count // 5):
        web = {"service": "shop", "target": f"web-{i:04d}", "kind": "http"}
        host = {"service": "shop", "target": f"host-{i:04d}", "kind": "host"}
        rows += [("probe_success", web), ("probe_duration_seconds", web)]
        rows += [("probe_value", {**host, "value": value}) for value in ("CPU", "MEMORY", "DISK")]
    return pl.DataFrame({"name": [n for n, _ in rows], "service": "shop", "target": [lab["target"] for _, lab in rows],
                         "labels": [series_labels(lab) for _, lab in rows],
                         "offset_s": rng.uniform(0, 60, len(rows))})


def with_values(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Plausible values: 1 % failed probe runs, 20-220 ms durations, 0-100 % utilisation."""
    u = pl.Series("u", rng.random(frame.height))
    value = (pl.when(pl.col("name") == "probe_success").then((u > 0.01).cast(pl.Float64))
             .when(pl.col("name") == "probe_duration_seconds").then(0.02 + u * 0.2)
             .otherwise(u * 100))
    return frame.with_columns(value.alias("value")).select(list(SCHEMA)).cast(SCHEMA).sort("ts")


def write_hours(root: Path, series: pl.DataFrame, start: datetime, hours: int, rng: np.random.Generator) -> None:
    """One sample a minute per series, written as the compacted hour files of the samples store."""
    minutes = pl.DataFrame({"minute": np.arange(60)})
    grid = series.join(minutes, how="cross")
    for h in range(hours):
        hour = start + h * HOUR
        frame = grid.with_columns((pl.lit(hour) + pl.duration(seconds=pl.col("minute") * 60 + pl.col("offset_s")))
                                  .dt.cast_time_unit("us").alias("ts"))
        directory = root / f"day={hour:%Y-%m-%d}"
        directory.mkdir(parents=True, exist_ok=True)
        with_values(frame, rng).write_parquet(directory / f"hour-{hour:%H}.parquet", compression="zstd")


def probe_runs(targets: int, rng: np.random.Generator) -> pl.DataFrame:
    """What one run of each http target writes (6 series), each target at its own second."""
    values = ("STATUS", "RESPONSE_TIME", "CONNECTED", "BODY_TRUNCATED")
    rows, offsets = [], rng.uniform(0, 60, targets)
    for i in range(targets):
        labels = {"service": f"svc-{i % 50:02d}", "target": f"t-{i:05d}", "kind": "http"}
        rows += [("probe_success", labels, offsets[i]), ("probe_duration_seconds", labels, offsets[i])]
        rows += [("probe_value", {**labels, "value": v}, offsets[i]) for v in values]
    return pl.DataFrame({"name": [r[0] for r in rows], "service": [r[1]["service"] for r in rows],
                         "target": [r[1]["target"] for r in rows], "labels": [series_labels(r[1]) for r in rows],
                         "offset_s": [r[2] for r in rows]})


# ------------------------------------------------------------------------------------------
# 1. the Trends query, from rollups and from raw samples
# ------------------------------------------------------------------------------------------
def bench_query(args, work: Path) -> None:
    rng = np.random.default_rng(1)
    now = END + timedelta(minutes=1)
    series = service_series(args.series, rng)
    store = SampleStore(work / "samples", now=lambda: now)
    _, wall, _ = measured(lambda: write_hours(store.root, series, END - timedelta(days=args.days), args.days * 24, rng))
    samples = args.series * args.days * 24 * 60
    print(f"\nQUERY: {args.series:,} series of one service, a sample a minute each for {args.days} days: "
          f"{samples:,} samples, {megabytes(store.root):,.0f} MB of Parquet, generated in {wall:.1f} s")

    rollups = Rollups(store)
    keep = {"1m": timedelta(days=args.minute_days), "1h": timedelta(days=args.days + 1)}
    for resolution in ("1h", "1m"):
        rows, wall, cpu = measured(lambda: rollups.roll(resolution, LATE, keep[resolution]))
        rollups.stores[resolution].compact(before=rollups.rolled_until(resolution, LATE))
        span = args.days if resolution == "1h" else args.minute_days
        print(f"  {resolution} rollups of {span} days: {rows:,} rows in {wall:.1f} s ({cpu:.1f} s CPU), "
              f"{megabytes(rollups.stores[resolution].root):,.0f} MB")

    engine = open_ledger(sqlite_url(work))
    print(f"\n  read_trends(service shop), median of {args.repeat} runs (fewer past 3 s); each reads the range "
          "and the one before it")
    header = f"  {'range':>5s} {'rollups':>7s} {'points':>8s} {'seconds':>8s} {'CPU s':>7s}"
    print(header + "\n  " + "-" * (len(header) - 2))
    minute_reach = timedelta(days=args.minute_days)
    for range_key, span in RANGES.items():
        for resolution in ("1m", "1h"):
            if resolution == "1m" and 2 * span > minute_reach:
                print(f"  {range_key:>5s} {resolution:>7s} {'(beyond --minute-days)':>25s}")
                continue
            found, wall, cpu = median_of(args.repeat, lambda: read_trends(rollups, engine, {}, "shop", range_key, now,
                                                                          resolution))
            points = sum(signal.frame.height for signal in found.signals.values())
            chosen = "  <- the page's choice" if resolution == resolution_for(span) else ""
            print(f"  {range_key:>5s} {resolution:>7s} {points:8,d} {wall:8.3f} {cpu:7.3f}{chosen}")

    found, wall, cpu = median_of(args.repeat, lambda: read_trends(rollups, engine, {}, "shop", "30d", now))
    since = found.since - RANGES["30d"]
    until = rollups.rolled_until("1h", LATE)
    bounds = {"first": since, "until": until, "since": found.since, "lines": SATURATION_LINES}
    peer, peer_wall, peer_cpu = median_of(args.peer_repeat, lambda: store.query(RAW_PEER, since, until, bounds))
    ours = np.sort(np.concatenate([s.frame["value"].to_numpy() for s in found.signals.values()]))
    theirs = np.sort(peer["value"].to_numpy())
    same = ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    print(f"\n  30d of shop (this period and the one before, per hour, {ours.size:,} points):")
    print(f"    read_trends from 1h rollups       {wall:8.3f} s  {cpu:7.3f} s CPU")
    covered = min(until, END) - max(since, END - timedelta(days=args.days))
    print(f"    peer: DuckDB over the raw samples {peer_wall:8.3f} s  {peer_cpu:7.3f} s CPU  "
          f"({args.series * int(covered / MINUTE):,} samples)")
    print(f"    rollups / raw: {peer_wall / wall:.1f}x faster; the same answer: {'yes' if same else 'NO'} "
          f"({theirs.size:,} points from the raw samples)")
    engine.dispose()


# ------------------------------------------------------------------------------------------
# 2. what keeping the rollups costs per minute of ingest
# ------------------------------------------------------------------------------------------
def bench_maintenance(args, work: Path) -> None:
    rng = np.random.default_rng(2)
    start = END
    clock = [start]
    store = SampleStore(work / "samples", now=lambda: clock[0])
    runs = probe_runs(args.targets, rng)
    flush = 5
    t0 = time.perf_counter()
    for minute in range(61):
        for window in range(0, 60, flush):
            part = runs.filter((pl.col("offset_s") >= window) & (pl.col("offset_s") < window + flush))
            part = part.with_columns((pl.lit(start + minute * MINUTE) + pl.duration(seconds=pl.col("offset_s")))
                                     .dt.cast_time_unit("us").alias("ts"))
            store.write(with_values(part, rng))
    per_minute = runs.height
    print(f"\nMAINTENANCE: {args.targets:,} targets once a minute, {per_minute // args.targets} samples a run "
          f"({per_minute:,} samples a minute), flushed every {flush} s: 61 minutes, "
          f"{60 // flush * 61:,} parts, {megabytes(store.root):,.0f} MB, written in "
          f"{time.perf_counter() - t0:.1f} s")

    rollups = Rollups(store)
    defaults = SettingsFile()
    keep = {"1m": defaults.rollups_1m_retention, "1h": defaults.rollups_1h_retention}
    passes = []
    for minute in range(1, 60):  # the job's pass half a minute into each minute
        clock[0] = start + minute * MINUTE + timedelta(seconds=30)
        written, wall, cpu = measured(lambda: rollups.maintain(LATE, keep))
        assert written["1m"] == per_minute and written["1h"] == 0, written
        passes.append((wall, cpu))
    clock[0] = start + HOUR + timedelta(seconds=30)
    hour_rows, hour_wall, hour_cpu = measured(lambda: rollups.roll("1h", LATE, keep["1h"]))
    _, last_wall, last_cpu = measured(lambda: rollups.maintain(LATE, keep))
    walls, cpus = sorted(w for w, _ in passes), sorted(c for _, c in passes)

    def p95(values: list[float]) -> float:
        return values[min(len(values) - 1, int(0.95 * len(values)))]

    print(f"  a minute's pass (roll up {per_minute:,} samples into {per_minute:,} 1m rows, compact, retention), "
          f"{len(passes)} passes:")
    print(f"    wall median {statistics.median(walls):.3f} s, p95 {p95(walls):.3f} s; CPU median "
          f"{statistics.median(cpus):.3f} s, p95 {p95(cpus):.3f} s = {statistics.median(cpus) / 60:.2%} of one core")
    print(f"  the hour's rollup ({per_minute * 60:,} samples in {60 // flush * 60:,} uncompacted parts -> "
          f"{hour_rows:,} 1h rows): {hour_wall:.2f} s wall, {hour_cpu:.2f} s CPU")
    print(f"  that pass's minute, with the 1m hour compacted: {last_wall:.2f} s wall, {last_cpu:.2f} s CPU")
    store.compact()
    for path in rollups.stores["1h"].files():
        path.unlink()
    _, wall, cpu = measured(lambda: rollups.roll("1h", LATE, keep["1h"]))
    print(f"  the hour's rollup once the samples' hour is compacted (1 file): {wall:.2f} s wall, {cpu:.2f} s CPU")
    day_minutes = megabytes(rollups.stores["1m"].root) / 60 * 1440
    print(f"  1m rollups on disk: {day_minutes:,.0f} MB a day at this ingest "
          f"({megabytes(rollups.stores['1m'].root):,.0f} MB for the hour)")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000, help="query: series of the service (a multiple of 5)")
    ap.add_argument("--days", type=int, default=60, help="query: days of samples (the 30d range and the one before)")
    ap.add_argument("--minute-days", type=int, default=14, help="query: days of per-minute rollups built")
    ap.add_argument("--repeat", type=int, default=3, help="query: runs of each read (median)")
    ap.add_argument("--peer-repeat", type=int, default=1, help="query: runs of the raw DuckDB peer (median)")
    ap.add_argument("--targets", type=int, default=10_000, help="maintenance: targets probed once a minute")
    ap.add_argument("--skip-query", action="store_true")
    ap.add_argument("--skip-maintenance", action="store_true")
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="workbench-bench-trends-"))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    try:
        print_machine()
        if not args.skip_query:
            bench_query(args, work / "query")
        if not args.skip_maintenance:
            bench_maintenance(args, work / "maintenance")
        print(f"\ntook {time.perf_counter() - started:.0f} s; load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except KeyboardInterrupt:
        print("interrupted; removing what was written", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
