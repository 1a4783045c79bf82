"""The samples store: time series from probes and Prometheus queries, as Parquet segments
under ``<data>/samples/``, read with DuckDB.

Writers buffer samples and flush them as one immutable segment per flush, written under a
temporary name and renamed into place, so readers in other processes never see a partial
file and never wait for the writer. Each segment's name carries the time span it covers
(``day=YYYY-MM-DD/part-<first ms>-<last ms>-<id>.parquet``), so retention drops whole
segments by name. Compaction merges a finished hour's segments into one ``hour-HH`` segment;
readers list the files themselves and skip the parts of an hour that has been compacted, so
a reader never counts a sample twice.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl

from ledger.db import utcnow

SCHEMA = {"ts": pl.Datetime("us", "UTC"), "name": pl.String, "service": pl.String, "target": pl.String,
          "labels": pl.String, "value": pl.Float64}
_PART = re.compile(r"^part-(\d+)-(\d+)-[0-9a-f]+\.parquet$")
_HOUR = re.compile(r"^hour-(\d\d)-(\d+)-(\d+)\.parquet$")
READ_ATTEMPTS = 3


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float
    at: datetime


class SampleStore:
    def __init__(self, root: Path | str, now: Callable[[], datetime] = utcnow):
        self.root = Path(root)
        self.now = now
        self._buffer: list[Sample] = []
        self._lock = threading.Lock()

    # --- writing ----------------------------------------------------------------------
    def append(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            self._buffer.extend(samples)

    def flush(self) -> int:
        """Write what is buffered as segments (one per day it spans); return how many samples."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        frame = _to_frame(batch)
        for (day,), part in frame.group_by(pl.col("ts").dt.date(), maintain_order=False):
            self._write(part.sort("ts"), day)
        return len(batch)

    def _write(self, frame: pl.DataFrame, day) -> None:
        directory = self.root / f"day={day:%Y-%m-%d}"
        directory.mkdir(parents=True, exist_ok=True)
        first, last = _ms(frame["ts"][0]), _ms(frame["ts"][-1])
        final = directory / f"part-{first}-{last}-{uuid.uuid4().hex[:12]}.parquet"
        temporary = final.with_name(final.name + ".tmp")
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        os.replace(temporary, final)

    # --- reading ----------------------------------------------------------------------
    def files(self, since: datetime | None = None, until: datetime | None = None) -> list[Path]:
        """Segments that may hold samples in [since, until], without the parts of compacted hours."""
        low = _ms(since) if since else 0
        high = _ms(until) if until else 2**63
        chosen: list[Path] = []
        for directory in sorted(self.root.glob("day=*")):
            names = os.listdir(directory) if directory.is_dir() else []
            compacted = {int(m[1]) for n in names if (m := _HOUR.match(n))}
            for name in sorted(names):
                span = _span(name)
                if span is None or span[1] < low or span[0] > high:
                    continue
                if _PART.match(name) and _hour_of(span[0]) in compacted and _hour_of(span[0]) == _hour_of(span[1]):
                    continue
                chosen.append(directory / name)
        return chosen

    def query(self, sql: str, since: datetime | None = None, until: datetime | None = None,
              params: list | None = None) -> pl.DataFrame:
        """Run ``sql`` over a view named ``samples`` of the segments in the window."""
        for attempt in range(READ_ATTEMPTS):
            files = self.files(since, until)
            con = duckdb.connect()
            try:
                if files:
                    con.execute(f"CREATE VIEW samples AS SELECT * FROM read_parquet({[str(f) for f in files]!r}, hive_partitioning = false)")
                else:
                    con.execute("CREATE VIEW samples AS SELECT * FROM (SELECT NULL::TIMESTAMPTZ AS ts, "
                                "NULL::VARCHAR AS name, NULL::VARCHAR AS service, NULL::VARCHAR AS target, "
                                "NULL::VARCHAR AS labels, NULL::DOUBLE AS value) WHERE false")
                return con.sql(sql, params=params or None).pl()
            except duckdb.IOException:
                if attempt == READ_ATTEMPTS - 1:  # segments kept vanishing under compaction or retention
                    raise
            finally:
                con.close()
        raise AssertionError("unreachable")

    def frame(self, name: str | None = None, since: datetime | None = None, until: datetime | None = None,
              service: str | None = None, target: str | None = None) -> pl.DataFrame:
        where, params = ["true"], []
        for column, value in (("name", name), ("service", service), ("target", target)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since:
            where.append("ts >= ?")
            params.append(since)
        if until:
            where.append("ts <= ?")
            params.append(until)
        return self.query(f"SELECT * FROM samples WHERE {' AND '.join(where)} ORDER BY ts", since, until, params)

    # --- housekeeping -----------------------------------------------------------------
    def compact(self, before: datetime | None = None) -> int:
        """Merge the parts of every finished hour (before ``before``, default: this hour) into
        one segment per hour; return how many hours were compacted."""
        cutoff = _hour_of(_ms((before or self.now()).replace(minute=0, second=0, microsecond=0)))
        done = 0
        for directory in sorted(self.root.glob("day=*")):
            by_hour: dict[int, list[Path]] = {}
            for path in directory.glob("part-*.parquet"):
                span = _span(path.name)
                if span and _hour_of(span[0]) == _hour_of(span[1]) and _hour_of(span[0]) < cutoff:
                    by_hour.setdefault(_hour_of(span[0]), []).append(path)
            for hour, parts in by_hour.items():
                existing = [p for p in directory.glob(f"hour-{_hh(hour)}-*.parquet")]
                sources = parts + existing
                frame = pl.concat([pl.read_parquet(p) for p in sources]).sort("ts")
                first, last = _ms(frame["ts"][0]), _ms(frame["ts"][-1])
                final = directory / f"hour-{_hh(hour)}-{first}-{last}.parquet"
                temporary = final.with_name(final.name + ".tmp")
                frame.write_parquet(temporary, compression="zstd", statistics=True)
                for old in existing:  # a re-compaction replaces the previous hour file
                    if old != final:
                        old.unlink()
                os.replace(temporary, final)
                for part in parts:
                    part.unlink()
                done += 1
        return done

    def enforce_retention(self, keep: timedelta) -> int:
        """Delete segments whose newest sample is older than ``keep``; return how many."""
        cutoff = _ms(self.now() - keep)
        removed = 0
        for directory in sorted(self.root.glob("day=*")):
            for path in directory.glob("*.parquet"):
                span = _span(path.name)
                if span and span[1] < cutoff:
                    path.unlink()
                    removed += 1
            for stale in directory.glob("*.tmp"):  # left by a writer killed mid-write
                if stale.stat().st_mtime < self.now().timestamp() - 3600:
                    stale.unlink()
            if not any(directory.iterdir()):
                directory.rmdir()
        return removed


def series_labels(labels: dict[str, str]) -> str:
    """Canonical JSON of a label set: the same labels give the same text."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _to_frame(batch: list[Sample]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [s.at for s in batch],
            "name": [s.name for s in batch],
            "service": [s.labels.get("service") for s in batch],
            "target": [s.labels.get("target") for s in batch],
            "labels": [series_labels(s.labels) for s in batch],
            "value": [float(s.value) for s in batch],
        },
        schema=SCHEMA,
    )


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _hour_of(ms: int) -> int:
    return (ms // 3_600_000) % 24 + (ms // 86_400_000) * 100  # day number * 100 + hour


def _hh(hour: int) -> str:
    return f"{hour % 100:02d}"


def _span(name: str) -> tuple[int, int] | None:
    if m := _PART.match(name):
        return int(m[1]), int(m[2])
    if m := _HOUR.match(name):
        return int(m[2]), int(m[3])
    return None
