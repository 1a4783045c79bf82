"""A window of raw samples, indexed by series, that detector rules read.

The samples are sorted once by series and time; a series is then a slice (no copy), and a
selector is matched against the series' labels, not against every sample. So a thousand rules
over millions of samples cost one sort plus work proportional to what each rule reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import polars as pl

from policies.selectors import Selector

COLUMNS = ("ts", "name", "labels", "value")


class Series(NamedTuple):
    name: str
    labels: dict[str, str]
    offset: int
    length: int


class SeriesWindow:
    def __init__(self, frame: pl.DataFrame):
        """``frame``: samples with columns ts, name, labels (canonical JSON) and value."""
        frame = frame.select(COLUMNS).with_columns(
            pl.col("ts").dt.convert_time_zone("UTC"),  # DuckDB answers in Etc/UTC
            pl.struct("name", "labels").hash().alias("series")).sort("series", "ts")
        self.frame = frame.select("ts", "value")
        heads = frame.group_by("series", maintain_order=True).agg(
            pl.col("name").first(), pl.col("labels").first(), pl.len().alias("length"))
        self.series: list[Series] = []
        self._by_name: dict[str, list[int]] = defaultdict(list)
        offset = 0
        for name, labels, length in heads.select("name", "labels", "length").iter_rows():
            self._by_name[name].append(len(self.series))
            self.series.append(Series(name, json.loads(labels), offset, length))
            offset += length

    @classmethod
    def empty(cls) -> SeriesWindow:
        return cls(pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "name": pl.String, "labels": pl.String,
                                        "value": pl.Float64}))

    def select(self, selector: Selector) -> list[Series]:
        candidates = self._by_name.get(selector.name, ()) if selector.name else range(len(self.series))
        return [s for s in (self.series[i] for i in candidates) if selector.matches(s.name, s.labels)]

    def values(self, series: list[Series], since: datetime | None = None,
               until: datetime | None = None) -> pl.DataFrame:
        """The samples (ts, value) of ``series`` in [since, until], by time."""
        if not series:
            return self.frame.clear()
        parts = [self.frame.slice(s.offset, s.length) for s in series]
        frame = pl.concat(parts) if len(parts) > 1 else parts[0]
        if since is not None:
            frame = frame.filter(pl.col("ts") >= since)
        if until is not None:
            frame = frame.filter(pl.col("ts") <= until)
        return frame.sort("ts") if len(parts) > 1 else frame
