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

:class:`SegmentStore` is that machinery for any table with a ``ts`` column; the rollups
(ledger/rollups.py) are segment stores too, one of them compacted by day (``day.parquet``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import duckdb
import polars as pl

from ledger.db import utcnow

SCHEMA = {"ts": pl.Datetime("us", "UTC"), "name": pl.String, "service": pl.String, "target": pl.String,
          "labels": pl.String, "value": pl.Float64}
_PART = re.compile(r"^part-(\d+)-(\d+)-[0-9a-f]+\.parquet$")
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
READ_ATTEMPTS = 10
DAY_GLOB = "day=????-??-??"
MERGED_PARTS = "workbench.merged_parts"  # Parquet metadata key of a merged file
_database: duckdb.DuckDBPyConnection | None = None
_database_lock = threading.Lock()

# Labels that name what runs: a series whose value of one of them changes is a deploy
# (``checkout_build_info{version="1.5.0"}`` appearing where ``version="1.4.2"`` was).
VERSION_LABELS = frozenset({"version", "revision", "commit", "git_commit", "git_sha", "image", "image_tag",
                            "release", "build", "app_version"})


@dataclass(frozen=True)
class Period:
    """What compaction merges into one file: the finished parts of an hour or of a day."""

    ms: int
    template: str  # name of the merged file; {hour} is its hour of the day
    pattern: re.Pattern

    def merged_name(self, start_ms: int) -> str:
        return self.template.format(hour=start_ms // HOUR_MS % 24)

    def merged_start(self, day_ms: int, name: str) -> int | None:
        match = self.pattern.match(name)
        return None if match is None else day_ms + int(match.groupdict().get("hour") or 0) * HOUR_MS


HOURLY = Period(HOUR_MS, "hour-{hour:02d}.parquet", re.compile(r"^hour-(?P<hour>\d\d)\.parquet$"))
DAILY = Period(DAY_MS, "day.parquet", re.compile(r"^day\.parquet$"))


class Segment(NamedTuple):
    path: Path
    first_ms: int  # the span of rows it may hold, from its name
    last_ms: int


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float
    at: datetime


class SegmentStore:
    """Immutable Parquet segments of a table with a ``ts`` column, one folder per UTC day;
    ``query`` sees them as the view ``view``."""

    def __init__(self, root: Path | str, schema: dict, view: str, period: Period = HOURLY,
                 now: Callable[[], datetime] = utcnow):
        self.root = Path(root)
        self.schema = schema
        self.view = view
        self.period = period
        self.now = now

    # --- writing ----------------------------------------------------------------------
    def write(self, frame: pl.DataFrame) -> None:
        """Write ``frame`` as one segment per day it spans, the earlier days first."""
        days = frame.with_columns(pl.col("ts").dt.date().alias("_day")).partition_by("_day", as_dict=True)
        for (day,), part in sorted(days.items()):
            self._write(part.drop("_day").sort("ts"), day)

    def _write(self, frame: pl.DataFrame, day) -> None:
        directory = self.root / f"day={day:%Y-%m-%d}"
        directory.mkdir(parents=True, exist_ok=True)
        first, last = epoch_ms(frame["ts"][0]), epoch_ms(frame["ts"][-1])
        _replace(frame, directory / f"part-{first}-{last}-{uuid.uuid4().hex[:12]}.parquet")

    # --- reading ----------------------------------------------------------------------
    def segments(self, since: datetime | None = None, until: datetime | None = None) -> list[Segment]:
        """Segments that may hold rows in [since, until], without the parts of compacted periods."""
        low = epoch_ms(since) if since else 0
        high = epoch_ms(until) if until else 2**63
        chosen: list[Segment] = []
        for directory in sorted(self.root.glob(DAY_GLOB)):
            day = _day_ms(directory)
            if day + DAY_MS <= low or day > high:
                continue
            try:
                names = os.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):  # emptied and removed by retention meanwhile
                continue
            merged_until = {self._span(day, n)[0] // self.period.ms: _mtime(directory / n)
                            for n in names if self.period.pattern.match(n)}
            for name in sorted(names):
                span = self._span(day, name)
                if span is None or span[1] < low or span[0] > high:
                    continue
                index = span[0] // self.period.ms
                if _PART.match(name) and index in merged_until and self._within_period(span) \
                        and _mtime(directory / name) <= merged_until[index]:
                    continue  # already in the merged file; about to be deleted
                chosen.append(Segment(directory / name, *span))
        return chosen

    def files(self, since: datetime | None = None, until: datetime | None = None) -> list[Path]:
        return [segment.path for segment in self.segments(since, until)]

    def query(self, sql: str, since: datetime | None = None, until: datetime | None = None,
              params: list | dict | None = None, frames: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
        """Run ``sql`` over a view named ``self.view`` of the segments in the window (and over
        ``frames``, each a table of that name)."""
        for attempt in range(READ_ATTEMPTS):
            files = self.files(since, until)
            con = _cursor()
            try:
                for name, frame in (frames or {}).items():
                    con.register(name, frame)
                if files:
                    con.execute(f"CREATE TEMP VIEW {self.view} AS SELECT * FROM "
                                f"read_parquet({[str(f) for f in files]!r}, hive_partitioning = false)")
                else:
                    con.register(self.view, pl.DataFrame(schema=self.schema))
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
        return self.query(f"SELECT * FROM {self.view} WHERE {' AND '.join(where)} ORDER BY ts", since, until, params)

    def newest(self) -> datetime | None:
        """Time of the newest row, read from the newest segments only."""
        segments = self.segments()
        if not segments:
            return None
        newest = max(segments, key=lambda s: s.last_ms)
        return self.query(f"SELECT max(ts) AS ts FROM {self.view}", since=from_epoch_ms(newest.first_ms))["ts"][0]

    # --- housekeeping -----------------------------------------------------------------
    def compact(self, before: datetime | None = None) -> int:
        """Merge the parts of every finished period (before ``before``, default: the current
        period) into its merged file; return how many periods were compacted."""
        cutoff = epoch_ms(before or self.now()) // self.period.ms
        done = 0
        for directory in sorted(self.root.glob(DAY_GLOB)):
            by_period: dict[int, list[Path]] = {}
            for path in directory.glob("part-*.parquet"):
                span = self._span(_day_ms(directory), path.name)
                if span and self._within_period(span) and span[0] // self.period.ms < cutoff:
                    by_period.setdefault(span[0] // self.period.ms, []).append(path)
            for index, parts in by_period.items():
                self._merge(parts, directory / self.period.merged_name(index * self.period.ms))
                done += 1
        return done

    def _merge(self, parts: list[Path], final: Path) -> None:
        """Merge ``parts`` into ``final``. The merged file names every part it holds, so parts
        left behind by a compaction killed after its rename are deleted, not merged twice."""
        merged = set(json.loads(pl.read_parquet_metadata(final).get(MERGED_PARTS, "[]"))) if final.exists() else set()
        fresh = [part for part in parts if part.name not in merged]
        if fresh:
            sources = fresh + ([final] if final.exists() else [])
            _replace(pl.concat([pl.read_parquet(p) for p in sources]).sort("ts"), final,
                     {MERGED_PARTS: json.dumps(sorted(merged | {part.name for part in fresh}))})
        for part in parts:  # readers skip them from the rename on
            part.unlink()

    def enforce_retention(self, keep: timedelta) -> int:
        """Delete segments whose newest row is older than ``keep``; return how many."""
        cutoff = epoch_ms(self.now() - keep)
        removed = 0
        for directory in sorted(self.root.glob(DAY_GLOB)):
            for path in directory.glob("*.parquet"):
                span = self._span(_day_ms(directory), path.name)
                if span and span[1] < cutoff:
                    path.unlink()
                    removed += 1
            for stale in directory.glob("*.tmp"):  # left by a writer killed mid-write
                if stale.stat().st_mtime < self.now().timestamp() - 3600:
                    stale.unlink()
            if not any(directory.iterdir()):
                directory.rmdir()
        return removed

    def _span(self, day_ms: int, name: str) -> tuple[int, int] | None:
        """First and last millisecond a segment may hold, from its name (and its day folder)."""
        if m := _PART.match(name):
            return int(m[1]), int(m[2])
        start = self.period.merged_start(day_ms, name)
        return None if start is None else (start, start + self.period.ms - 1)

    def _within_period(self, span: tuple[int, int]) -> bool:
        return span[0] // self.period.ms == span[1] // self.period.ms


class SampleSink(Protocol):
    """Where a probe's samples go: the store itself, or the ledger on their way to it (a fleet worker)."""

    def append(self, samples: Iterable[Sample]) -> None: ...

    def flush(self) -> int: ...


class SampleStore(SegmentStore):
    """Raw samples: appended from any thread, written as one segment per day per flush."""

    def __init__(self, root: Path | str, now: Callable[[], datetime] = utcnow):
        super().__init__(root, SCHEMA, "samples", HOURLY, now)
        self._buffer: list[Sample] = []
        self._lock = threading.Lock()

    def append(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            self._buffer.extend(samples)

    def write_new(self, samples: list[Sample]) -> int:
        """Write those of ``samples`` the store does not hold yet (the same name, labels and time),
        at once; return how many. Importing the same history twice keeps one copy."""
        if not samples:
            return 0
        frame = to_frame(samples).unique(["name", "labels", "ts"], keep="first", maintain_order=True)
        since, until = frame["ts"].min(), frame["ts"].max()
        names = frame["name"].unique().to_list()
        held = self.query(f"SELECT name, labels, ts FROM samples WHERE ts BETWEEN ? AND ? AND name IN "
                          f"({', '.join('?' for _ in names)})", since, until, [since, until, *names])
        if not held.is_empty():
            frame = frame.join(held.with_columns(pl.col("ts").cast(SCHEMA["ts"])), on=["name", "labels", "ts"],
                               how="anti")
        if not frame.is_empty():
            self.write(frame)
        return frame.height

    def flush(self) -> int:
        """Write what is buffered as segments (one per day it spans); return how many samples."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        self.write(to_frame(batch))
        return len(batch)


def _cursor() -> duckdb.DuckDBPyConnection:
    """A connection of its own (its temporary views are its own) to the process's in-memory
    DuckDB database: opening a database takes about 14 ms, a cursor on it about 1 ms."""
    global _database
    with _database_lock:
        if _database is None:
            _database = duckdb.connect()
        return _database.cursor()


def series_labels(labels: dict[str, str]) -> str:
    """Canonical JSON of a label set: the same labels give the same text."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def to_frame(batch: list[Sample]) -> pl.DataFrame:
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


def _replace(frame: pl.DataFrame, final: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``frame`` to ``final`` whole: under a temporary name, then renamed into place."""
    temporary = final.with_name(final.name + ".tmp")
    frame.write_parquet(temporary, compression="zstd", statistics=True, metadata=metadata)
    os.replace(temporary, final)


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _day_ms(directory: Path) -> int:
    return epoch_ms(datetime.strptime(directory.name.removeprefix("day="), "%Y-%m-%d"))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:  # merged away meanwhile: newest possible, so nothing is skipped for it
        return 2**63
