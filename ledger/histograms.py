"""Quantiles of a Prometheus histogram's buckets, computed as PromQL's ``histogram_quantile``
does (promql/quantile.go, ``bucketQuantile``): the buckets sorted by upper bound, the last one
``+Inf`` (else NaN), buckets of the same bound merged, counts made monotonic, and the quantile
interpolated linearly inside the bucket its rank falls in (from 0 in the first bucket; the
highest finite bound when it falls in ``+Inf``).
"""

from __future__ import annotations

import math
from bisect import bisect_left


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """The ``q``-quantile (0-1) of cumulative ``buckets``, (upper bound, count) in any order."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    bounds, counts, highest = [], [], -math.inf
    for bound, count in ordered:
        highest = max(highest, count)  # a count below an earlier one is raised to it (a scrape between bucket reads)
        bounds.append(bound)
        counts.append(highest)
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = bisect_left(counts, rank, 0, len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[b]
    if b > 0:
        start, count, rank = bounds[b - 1], count - counts[b - 1], rank - counts[b - 1]
    return start + (bounds[b] - start) * (rank / count)
