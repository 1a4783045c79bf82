#!/usr/bin/env python3
"""One detector cycle at scale, beside a DuckDB aggregation of the same samples.

    .venv/bin/python bench/detectors.py [--series 10000] [--points 1000] [--rules 1000]

Writes ``--series`` x ``--points`` samples (default 10,000 x 1,000 = 10 million) of
``probe_duration_seconds`` over the last hour into a fresh samples store (Parquet, as the
worker writes it: one part per series block, compacted per hour), 10 series (targets) per
service, and a rules.yaml of ``--rules`` rules, one per service, a quarter each of latency p99,
saturation avg, threshold max and absence, each grouped by target (so 10 groups per rule).
About 1% of the targets are slow, so their latency rules fire.

It then times ``detectors.cycle.run_rules`` on a fresh SQLite ledger twice (the first cycle
opens the findings and incidents, the second is the steady state) and splits each into
reading the window (DuckDB over the Parquet segments), indexing it (one sort), evaluating the
rules and writing to the ledger. The peer, measured in the same run: DuckDB alone computing
p50/p95/p99 per series over the same samples (one GROUP BY, no rule logic).
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

from detectors.cycle import load_windows, run_rules  # noqa: E402
from ledger.db import open_ledger, sqlite_url, utcnow  # noqa: E402
from ledger.samples import SCHEMA, SampleStore  # noqa: E402
from policies.loader import load_policy  # noqa: E402

KINDS = ("latency", "saturation", "threshold", "absence")


def write_samples(store: SampleStore, series: int, points: int, now) -> int:
    """``series`` x ``points`` samples over the last hour, straight into the store's layout."""
    start = now - timedelta(hours=1)
    step_us = int(3600e6 / points)
    rng = np.random.default_rng(7)
    block = max(1, 1_000_000 // points)  # series per Parquet part
    for first in range(0, series, block):
        ids = np.arange(first, min(series, first + block))
        slow = (ids % 97 == 0)  # about 1% of the targets are slow
        ts = np.tile(np.arange(points, dtype=np.int64) * step_us, len(ids))
        base = np.repeat(np.where(slow, 0.9, 0.05), points)
        frame = pl.DataFrame({
            "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.offset_by(f"{int(start.timestamp() * 1e6)}us")
            .dt.replace_time_zone("UTC"),
            "name": "probe_duration_seconds",
            "service": np.repeat([f"svc-{i // 10}" for i in ids], points),
            "target": np.repeat([f"t-{i}" for i in ids], points),
            "labels": np.repeat([f'{{"kind":"http","service":"svc-{i // 10}","target":"t-{i}"}}' for i in ids],
                                points),
            "value": base + rng.random(len(ts)) * 0.02,
        }, schema=SCHEMA)
        store.write(frame)
    return series * points


def write_rules(directory: Path, rules: int) -> None:
    lines = ["rules:"]
    for i in range(rules):
        kind, service = KINDS[i % 4], f"svc-{i}"
        head = f"  - {{name: r-{i}, kind: {kind}, by: [service, target], window: 5m"
        series = f"series: 'probe_duration_seconds{{service=\"{service}\"}}'"
        lines.append({
            "latency": f"{head}, {series}, percentile: 99, above: 0.5}}",
            "saturation": f"{head}, {series}, above: 0.5}}",
            "threshold": f"{head}, {series}, reduce: max, above: 0.5}}",
            "absence": f"{head}, {series}, lookback: 1h}}",
        }[kind])
    (directory / "rules.yaml").write_text("\n".join(lines) + "\n")


def duckdb_peer(store: SampleStore, now) -> float:
    t = time.perf_counter()
    store.query("SELECT name, labels, quantile_cont(value, 0.5) p50, quantile_cont(value, 0.95) p95, "
                "quantile_cont(value, 0.99) p99 FROM samples WHERE ts >= ? GROUP BY name, labels",
                now - timedelta(hours=1), now, [now - timedelta(hours=1)])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000)
    ap.add_argument("--rules", type=int, default=1_000)
    a = ap.parse_args()
    if a.series < a.rules * 10:
        ap.error("need 10 series per rule (one service per rule, 10 targets each)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-detectors-"))
    try:
        now = utcnow()
        store = SampleStore(tmp / "samples")
        t = time.perf_counter()
        written = write_samples(store, a.series, a.points, now)
        compacted = store.compact(now + timedelta(hours=2))
        print(f"samples: {written:,} ({a.series:,} series x {a.points:,} points over 1h) written in "
              f"{time.perf_counter() - t:.1f}s, {compacted} hours compacted, "
              f"{sum(f.stat().st_size for f in store.files()) / 1e6:.0f} MB of Parquet")
        policy_dir = tmp / "policy"
        policy_dir.mkdir()
        (policy_dir / "targets.yaml").write_text("targets: []\n")
        write_rules(policy_dir, a.rules)
        policy = load_policy(policy_dir)
        rules = list(policy.rules.resolved)
        print(f"rules: {len(rules):,} ({', '.join(KINDS)}), by target: {len(rules) * 10:,} groups")

        t = time.perf_counter()
        window, _ = load_windows(store, rules, now)
        read = time.perf_counter() - t
        t = time.perf_counter()
        print(f"window: {window.size:,} samples, {len(window.series):,} series; read, sorted and indexed in "
              f"{read:.2f}s")

        engine = open_ledger(sqlite_url(tmp / "data"))
        print(f"\n{'cycle':28s} {'evaluate s':>10s} {'write s':>8s} {'total s':>8s} {'signals'}")
        for label in ("first (opens findings)", "second (steady state)"):
            t = time.perf_counter()
            outcome = run_rules(engine, store, policy, now)
            total = time.perf_counter() - t
            print(f"{label:28s} {outcome.evaluate_seconds:10.2f} {outcome.write_seconds:8.2f} {total:8.2f} "
                  f"{outcome.signals}")
            now += timedelta(seconds=15)
        peer = duckdb_peer(store, now)
        print(f"\npeer: DuckDB p50/p95/p99 per series over the same {window.size:,} samples, one GROUP BY: "
              f"{peer:.2f}s")
        print(f"steady detector cycle / DuckDB aggregation: {total / peer:.1f}x "
              f"(the cycle also reads the window, runs {len(rules):,} rules and writes the ledger)")
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
