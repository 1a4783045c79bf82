"""The samples store: time series from probes and Prometheus queries, as Parquet segments
under ``<data>/samples/``, read with DuckDB.

Writers buffer samples and flush them as one immutable segment per flush, written under a
temporary name and renamed into place, so readers in other processes never see a partial
file and never wait for the writer. Each segment's name carries the time span it covers
(``day=YYYY-MM-DD/part-<first ms>-<last ms>-<id>.parquet``), so retention drops whole
segments by name. Compaction merges a finished hour's segments into one ``hour-HH.parquet``,
replaced atomically when late parts arrive; readers list the files themselves and skip the
parts not newer than their hour file (merged, about to be deleted), so a reader never counts
a sample twice, and retry when a segment they listed was merged away before they opened it.
A part written after its hour was compacted stays visible and is merged next time.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
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
_HOUR = re.compile(r"^hour-(\d\d)\.parquet$")
READ_ATTEMPTS = 10


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
            merged_until = {_span(directory, n)[0] // 3_600_000: _mtime(directory / n) for n in names if _HOUR.match(n)}
            for name in sorted(names):
                span = _span(directory, name)
                if span is None or span[1] < low or span[0] > high:
                    continue
                hour = span[0] // 3_600_000
                if _PART.match(name) and hour in merged_until and _same_hour(span) \
                        and _mtime(directory / name) <= merged_until[hour]:
                    continue  # already in the hour file; about to be deleted
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
                time.sleep(0.01 * (attempt + 1))
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
        its hour file; return how many hours were compacted."""
        cutoff = _ms((before or self.now()).replace(minute=0, second=0, microsecond=0)) // 3_600_000
        done = 0
        for directory in sorted(self.root.glob("day=*")):
            by_hour: dict[int, list[Path]] = {}
            for path in directory.glob("part-*.parquet"):
                span = _span(directory, path.name)
                if span and _same_hour(span) and span[0] // 3_600_000 < cutoff:
                    by_hour.setdefault(span[0] // 3_600_000, []).append(path)
            for hour, parts in by_hour.items():
                final = directory / f"hour-{hour % 24:02d}.parquet"
                sources = parts + ([final] if final.exists() else [])
                frame = pl.concat([pl.read_parquet(p) for p in sources]).sort("ts")
                temporary = final.with_name(final.name + ".tmp")
                frame.write_parquet(temporary, compression="zstd", statistics=True)
                os.replace(temporary, final)  # from here on readers skip this hour's parts
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
                span = _span(directory, path.name)
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


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:  # merged away meanwhile: newest possible, so nothing is skipped for it
        return 2**63


def _same_hour(span: tuple[int, int]) -> bool:
    return span[0] // 3_600_000 == span[1] // 3_600_000


def _span(directory: Path, name: str) -> tuple[int, int] | None:
    """First and last millisecond a segment may hold, from its name (and its day folder)."""
    if m := _PART.match(name):
        return int(m[1]), int(m[2])
    if m := _HOUR.match(name):
        day = datetime.strptime(directory.name.removeprefix("day="), "%Y-%m-%d").replace(tzinfo=UTC)
        start = _ms(day) + int(m[1]) * 3_600_000
        return start, start + 3_599_999
    return None
