"""Samples with exactly known excursions, and rules over them, for backtest tests: latency is
0.1 s every minute but 2 s from 60 to 90 min and from 240 to 250 min; probe_success is missing
from 120 to 140 min."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.samples import Sample, SampleStore

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
END = T0 + timedelta(hours=6, minutes=30)
WEB = {"service": "shop", "target": "web", "kind": "http"}
RULES = """
noise: {evaluation_interval: 1m}
rules:
  - name: shop-latency
    kind: latency
    service: shop
    percentile: 50
    above: 0.5
    window: 1m
    for: 5m
    keep_firing_for: 10m
  - name: shop-slow-avg
    kind: threshold
    series: 'probe_duration_seconds{service="shop"}'
    reduce: max
    above: 1
    window: 3m
  - name: shop-silent
    kind: absence
    series: 'probe_success{service="shop"}'
    window: 5m
    lookback: 1h
"""


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def write_history(store: SampleStore) -> None:
    samples = []
    for m in range(0, 391):
        slow = 60 <= m < 90 or 240 <= m < 250
        samples.append(Sample("probe_duration_seconds", WEB, 2.0 if slow else 0.1, minutes(m)))
        if not 120 <= m < 140:
            samples.append(Sample("probe_success", WEB, 1.0, minutes(m)))
    store.append(samples)
    store.flush()
