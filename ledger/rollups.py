"""Per-minute and per-hour rollups of the samples store, for charts over long ranges.

For each bucket (a minute, an hour) and series (name and labels) a rollup row holds count,
sum, min, max, last and the exact p50, p95 and p99 of the raw samples in the bucket, computed
by DuckDB. Rows are segments of a :class:`ledger.samples.SegmentStore` under
``<data>/rollups/1m/`` (compacted by hour) and ``<data>/rollups/1h/`` (compacted by day), so
they are written whole and renamed into place, readers in other processes never wait or count
a row twice, and retention drops whole segments by name.

A bucket is rolled up once it is complete and the allowance for late samples (a probe's
samples are written up to its timeout plus a flush interval after their time) has passed.
Where to resume is read from the rollups themselves (the newest bucket written), and each
segment is written whole, so a pass that dies midway is picked up by the next one without a
bucket missing or counted twice. Raw samples are read an hour at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from ledger.samples import (
    DAILY,
    HOURLY,
    SampleStore,
    SegmentStore,
    epoch_ms,
    from_epoch_ms,
)

SCHEMA = {"ts": pl.Datetime("us", "UTC"), "name": pl.String, "service": pl.String, "target": pl.String,
          "labels": pl.String, "count": pl.Int64, "sum": pl.Float64, "min": pl.Float64, "max": pl.Float64,
          "last": pl.Float64, "p50": pl.Float64, "p95": pl.Float64, "p99": pl.Float64}
STEPS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
CHUNK = timedelta(hours=1)
_ROLLUP = """
SELECT ts, name, service, target, labels, count, sum, min, max, last, q[1] AS p50, q[2] AS p95, q[3] AS p99
FROM (
    SELECT make_timestamptz(epoch_us(ts) // {step_us} * {step_us}) AS ts, name, service, target, labels,
           count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
           arg_max(value, ts) AS last, quantile_cont(value, [0.5, 0.95, 0.99]) AS q
    FROM samples WHERE ts >= ? AND ts < ?
    GROUP BY ALL
)
"""


class Rollups:
    """The rollup stores of one samples store, by resolution ("1m", "1h"); by default in
    ``rollups/`` beside its ``samples/`` folder."""

    def __init__(self, samples: SampleStore, root: Path | str | None = None):
        self.samples = samples
        root = Path(root) if root is not None else samples.root.parent / "rollups"
        self.stores = {
            "1m": SegmentStore(root / "1m", SCHEMA, "rollups", HOURLY, samples.now),
            "1h": SegmentStore(root / "1h", SCHEMA, "rollups", DAILY, samples.now),
        }

    def maintain(self, late: timedelta, keep: Mapping[str, timedelta]) -> dict[str, int]:
        """Roll up what is due, compact the finished periods and drop what is past ``keep``
        (by resolution); return the rows written by resolution."""
        written = {}
        for resolution, store in self.stores.items():
            written[resolution] = self.roll(resolution, late, keep[resolution])
            store.compact(before=self.rolled_until(resolution, late))
            store.enforce_retention(keep[resolution])
        return written

    def rolled_until(self, resolution: str, late: timedelta) -> datetime:
        """End of the last complete bucket whose late samples are all in."""
        return floor_time(self.samples.now() - late, STEPS[resolution])

    def roll(self, resolution: str, late: timedelta, keep: timedelta) -> int:
        """Roll up the buckets due since the newest one written (none older than ``keep``);
        return how many rows were written."""
        store, step = self.stores[resolution], STEPS[resolution]
        end = self.rolled_until(resolution, late)
        newest = store.newest()
        start = floor_time(self.samples.now() - keep, step)
        if newest is not None:
            start = max(start, floor_time(newest, step) + step)
        written = 0
        while start < end:
            pending = self.samples.segments(start, end - timedelta(milliseconds=1))
            if not pending:
                break
            start = max(start, floor_time(from_epoch_ms(min(s.first_ms for s in pending)), step))
            stop = min(end, floor_time(start, CHUNK) + CHUNK)
            frame = self.compute(start, stop, step)
            if frame.height:
                store.write(frame)
            written += frame.height
            start = stop
        return written

    def compute(self, since: datetime, until: datetime, step: timedelta) -> pl.DataFrame:
        """Rollup rows of the raw samples in [since, until), buckets of ``step``."""
        sql = _ROLLUP.format(step_us=int(step.total_seconds() * 1_000_000))
        frame = self.samples.query(sql, since, until - timedelta(milliseconds=1), [since, until])
        return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).cast(SCHEMA)


def floor_time(moment: datetime, step: timedelta) -> datetime:
    step_ms = int(step.total_seconds() * 1000)
    return from_epoch_ms(epoch_ms(moment) // step_ms * step_ms)
