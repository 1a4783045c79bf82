"""A window of raw samples, indexed by series, that detector rules read.

The samples are sorted once by series and time into two arrays (time in microseconds, value);
a series is then a slice of them (no copy), a time range within it two binary searches, and a
selector is matched against the series' labels (through a per-label index for equality
matchers), not against every sample. So a thousand rules over millions of samples cost one
sort plus work proportional to what each rule reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import numpy as np
import polars as pl

from policies.selectors import Selector


class Series(NamedTuple):
    name: str
    labels: dict[str, str]
    offset: int
    length: int


class SeriesWindow:
    def __init__(self, points: pl.DataFrame, series: pl.DataFrame):
        """``points``: columns sid (a series id), t (microseconds since the epoch) and value,
        sorted by sid and t; ``series``: sid, name and labels (canonical JSON) of each series."""
        self.size = points.height
        self._ts = points["t"].to_numpy()
        self._values = points["value"].to_numpy()
        sids = points["sid"].to_numpy()
        starts = np.flatnonzero(np.r_[True, sids[1:] != sids[:-1]]) if sids.size else np.empty(0, np.int64)
        lengths = np.diff(np.r_[starts, sids.size])
        heads = dict(zip(series["sid"].to_list(), zip(series["name"].to_list(), series["labels"].to_list())))
        self.series: list[Series] = []
        self._by_name: dict[str, list[int]] = defaultdict(list)
        self._postings: dict[tuple[str, str], dict[str, list[int]]] = {}  # (name, label) -> value -> ids
        # What rules ask again and again (a backtest asks at every step): the series a selector
        # matches, their groups, and each group's points merged in time order.
        self._selected: dict[Selector, list[Series]] = {}
        self._grouped: dict[tuple[Selector, tuple[str, ...]], dict[tuple, list[Series]]] = {}
        self._merged: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        for sid, offset, length in zip(sids[starts].tolist(), starts.tolist(), lengths.tolist()):
            if sid in heads:  # else: written between the two reads; seen next cycle
                name, labels = heads[sid]
                self._by_name[name].append(len(self.series))
                self.series.append(Series(name, json.loads(labels), offset, length))

    @classmethod
    def of(cls, frame: pl.DataFrame) -> SeriesWindow:
        """A window of samples with columns ts, name, labels and value."""
        frame = frame.with_columns(pl.struct("name", "labels").hash().alias("sid"))
        points = frame.select("sid", pl.col("ts").dt.epoch("us").alias("t"), "value").sort("sid", "t")
        return cls(points, frame.select("sid", "name", "labels").unique("sid"))

    @classmethod
    def empty(cls) -> SeriesWindow:
        return cls.of(pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "name": pl.String, "labels": pl.String,
                                           "value": pl.Float64}))

    def select(self, selector: Selector) -> list[Series]:
        if selector in self._selected:
            return self._selected[selector]
        candidates = self._by_name.get(selector.name, ()) if selector.name else range(len(self.series))
        for m in selector.matchers if selector.name else ():
            if m.op == "=" and m.value:  # narrow to the series with that label value first
                ids = self._posting(selector.name, m.label).get(m.value, ())
                candidates = ids if len(ids) < len(candidates) else candidates
        found = self._selected[selector] = [s for s in (self.series[i] for i in candidates)
                                            if selector.matches(s.name, s.labels)]
        return found

    def groups(self, selector: Selector, by: list[str]) -> dict[tuple, list[Series]]:
        """The series ``selector`` matches, by the values of their ``by`` labels ("" when absent)."""
        key = (selector, tuple(by))
        if key not in self._grouped:
            grouped: dict[tuple, list[Series]] = defaultdict(list)
            for s in self.select(selector):
                grouped[tuple(s.labels.get(label, "") for label in by)].append(s)
            self._grouped[key] = dict(grouped)
        return self._grouped[key]

    def _posting(self, name: str, label: str) -> dict[str, list[int]]:
        key = (name, label)
        if key not in self._postings:
            posting: dict[str, list[int]] = defaultdict(list)
            for i in self._by_name.get(name, ()):
                if label in self.series[i].labels:
                    posting[self.series[i].labels[label]].append(i)
            self._postings[key] = posting
        return self._postings[key]

    def values(self, series: list[Series], since: datetime | None = None,
               until: datetime | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The samples of ``series`` in [since, until], by time: times (microseconds since the
        epoch) and values."""
        low = -2**62 if since is None else int(since.timestamp() * 1e6)
        high = 2**62 if until is None else int(until.timestamp() * 1e6)
        key = tuple(s.offset for s in series)
        if key not in self._merged:
            self._merged[key] = merge([(self._ts[s.offset:s.offset + s.length],
                                        self._values[s.offset:s.offset + s.length]) for s in series])
        ts, values = self._merged[key]
        a, b = ts.searchsorted(low, "left"), ts.searchsorted(high, "right")
        return ts[a:b], values[a:b]


def merge(points: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) pairs of several series as one, by time."""
    if len(points) == 1:
        return points[0]
    if not points:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    ts, values = np.concatenate([p[0] for p in points]), np.concatenate([p[1] for p in points])
    order = np.argsort(ts, kind="stable")
    return ts[order], values[order]
