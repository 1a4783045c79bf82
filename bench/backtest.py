#!/usr/bin/env python3
"""A rule's 7-day backtest at scale, beside DuckDB computing the same windowed percentile.

    .venv/bin/python bench/backtest.py [--series 1000] [--days 7] [--services 10] [--interval 15s]

Writes ``--series`` series of ``probe_duration_seconds`` at one sample a minute over ``--days``
days (default 1,000 x 10,080 = 10 million samples) into a fresh samples store, spread over
``--services`` services (a few slow hours each day in one of them), then times
``learning.backtests.backtest`` of one latency rule (p99 over 5 minutes, for 2 minutes, grouped by
service as rules are by default) at the policy's evaluation interval, split into reading the
samples and the replay itself. The peer, in the same run: DuckDB alone computing the same p99
over a 5-minute window ending at every sample of each service (a window aggregate, no rule
logic, no state machine). Then it times one pass of rule suggestions (``learning.suggestions.suggest``)
for the service with the slow hour, given an incident every day at noon that no rule catches (imported
incidents), which backtests the rule and each candidate over the same week.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detectors.cycle import load_windows  # noqa: E402
from learning.backtests import backtest  # noqa: E402
from learning.suggestions import suggest  # noqa: E402
from ledger.db import open_ledger, sqlite_url, utcnow, write_session  # noqa: E402
from ledger.repo import incidents  # noqa: E402
from ledger.samples import SCHEMA, SampleStore  # noqa: E402
from policies.loader import load_policy  # noqa: E402


def write_samples(store: SampleStore, series: int, days: int, services: int, end) -> int:
    points = days * 1440
    start = end - timedelta(days=days)
    rng = np.random.default_rng(7)
    minute = np.arange(points, dtype=np.int64)
    slow_minutes = (minute % 1440) // 60 == 3  # 03:00 to 04:00 of every day
    block = max(1, 1_000_000 // points)
    for first in range(0, series, block):
        ids = np.arange(first, min(series, first + block))
        service = ids % services
        slow = np.repeat(service == 0, points) & np.tile(slow_minutes, len(ids))
        frame = pl.DataFrame({
            "ts": pl.Series(np.tile(minute * 60_000_000, len(ids))).cast(pl.Datetime("us"))
            .dt.offset_by(f"{int(start.timestamp() * 1e6)}us").dt.replace_time_zone("UTC"),
            "name": "probe_duration_seconds",
            "service": np.repeat([f"svc-{s}" for s in service], points),
            "target": np.repeat([f"t-{i}" for i in ids], points),
            "labels": np.repeat([f'{{"kind":"http","service":"svc-{s}","target":"t-{i}"}}'
                                 for i, s in zip(ids, service)], points),
            "value": np.where(slow, 0.9, 0.05) + rng.random(len(ids) * points) * 0.02,
        }, schema=SCHEMA)
        store.write(frame)
    return series * points


def duckdb_peer(store: SampleStore, since, until) -> float:
    t = time.perf_counter()
    store.query("SELECT service, ts, quantile_cont(value, 0.99) OVER (PARTITION BY service ORDER BY ts RANGE "
                "BETWEEN INTERVAL 5 MINUTES PRECEDING AND CURRENT ROW) AS p99 FROM samples WHERE ts >= ?",
                since, until, [since])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--interval", default="15s", help="the policy's noise.evaluation_interval")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-backtest-"))
    try:
        end = utcnow().replace(second=0, microsecond=0)
        store = SampleStore(tmp / "samples", now=lambda: end)
        t = time.perf_counter()
        written = write_samples(store, a.series, a.days, a.services, end)
        print(f"samples: {written:,} ({a.series:,} series x one a minute for {a.days} days, {a.services} services) "
              f"written in {time.perf_counter() - t:.1f}s, "
              f"{sum(f.stat().st_size for f in store.files()) / 1e6:.0f} MB of Parquet")
        policy_dir = tmp / "policy"
        policy_dir.mkdir()
        (policy_dir / "targets.yaml").write_text("targets: []\nallow_empty: true\n")
        (policy_dir / "rules.yaml").write_text(
            f"noise: {{evaluation_interval: {a.interval}}}\nrules:\n"
            "  - {name: slow, kind: latency, series: probe_duration_seconds, percentile: 99, above: 0.5, "
            "window: 5m, for: 2m}\n"
            f"learning: {{history: {a.days}d}}\n")
        policy = load_policy(policy_dir)
        start = end - timedelta(days=a.days)
        engine = open_ledger(sqlite_url(tmp / "data"))

        t = time.perf_counter()
        window, _ = load_windows(store, list(policy.rules.resolved), end, since=start)
        read = time.perf_counter() - t
        t = time.perf_counter()
        report = backtest(engine, store, policy, "slow", start, end)
        total = time.perf_counter() - t
        print(f"backtest of one latency rule (p99 over 5m, by service: {len(report.services)} groups), "
              f"{report.evaluations:,} evaluations at {a.interval}: {total:.1f}s "
              f"(reading {window.size:,} samples: {read:.1f}s; replay: {total - read:.1f}s); "
              f"{len(report.episodes)} episodes, {report.fires_per_day} a day")
        per_week = total / (a.days / 7)
        peer = duckdb_peer(store, start, end)
        print(f"peer: DuckDB p99 over 5 minutes at every sample, per service (a window aggregate): {peer:.1f}s")
        print(f"backtest / DuckDB window aggregate: {total / peer:.1f}x; {per_week:.1f}s per rule-week")

        with write_session(engine) as session:
            for day in range(a.days):
                opened = start.replace(hour=12, minute=10) + timedelta(days=day)  # not at its slow hour: missed
                if start <= opened <= end:
                    incidents.import_incident(session, incidents.PastIncident(
                        "svc-0", f"svc-0 slow, day {day}", "critical", opened, opened + timedelta(minutes=40)),
                        "bench", "bench", end)
        t = time.perf_counter()
        made = suggest(engine, store, policy, end, "svc-0")
        print(f"suggestions for svc-0 (a {a.days}-day history, an incident a day): {time.perf_counter() - t:.1f}s, "
              f"{len(made)} kept")
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
