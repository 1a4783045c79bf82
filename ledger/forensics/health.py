"""A service's health over a long range against its objectives: availability (the share of good
requests, or of passing probe runs) and latency per day, from the golden signals as the Trends
page computes them (``ledger.trends.read_window``), and the error budget the availability
objective leaves and how much of it was spent.

    >>> days = forensics.daily_health(engine, store, services, "shop", since, until)
    >>> forensics.error_budget(days, objective=0.999)
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Engine

from ledger.forensics.frames import TIME
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from ledger.trends import read_window
from policies.rules import ServiceSignals

DAY = {"day": TIME, "traffic": pl.Float64, "bad": pl.Float64, "availability": pl.Float64, "p95_ms": pl.Float64,
       "p99_ms": pl.Float64}
BUDGET = {"objective": pl.Float64, "availability": pl.Float64, "allowed_bad_share": pl.Float64,
          "bad_share": pl.Float64, "budget_spent": pl.Float64, "budget_left": pl.Float64}


def daily_health(engine: Engine, store: SampleStore, services: dict[str, ServiceSignals], service: str,
                 since: datetime, until: datetime, resolution: str | None = None) -> pl.DataFrame:
    """Per day of [since, until]: the traffic (the sum of the traffic signal's buckets, in its
    unit), the part of it that was bad (each bucket's traffic times its error ratio), the
    availability (1 - bad / traffic) and the worst bucket's p95 and p99 latency (ms)."""
    trends = read_window(Rollups(store), engine, services, service, since, until, "health", resolution)
    current = {name: signal.current for name, signal in trends.signals.items()}
    buckets = (current["traffic"].group_by("ts").agg(traffic=pl.col("value").sum())
               .join(current["errors"].select("ts", ratio="value"), on="ts", how="left")
               .with_columns(bad=pl.col("traffic") * pl.col("ratio").fill_null(0.0)))
    latency = current["latency"].pivot(on="series", index="ts", values="value") if current["latency"].height \
        else pl.DataFrame(schema={"ts": TIME, "p95": pl.Float64, "p99": pl.Float64})
    days = (buckets.join(latency.select("ts", "p95", "p99"), on="ts", how="full", coalesce=True)
            .group_by(day=pl.col("ts").dt.truncate("1d"))
            .agg(traffic=pl.col("traffic").sum(), bad=pl.col("bad").sum(), p95_ms=pl.col("p95").max(),
                 p99_ms=pl.col("p99").max())
            .with_columns(availability=1 - pl.col("bad") / pl.col("traffic")))
    return days.select(list(DAY)).cast(DAY).sort("day")


def error_budget(days: pl.DataFrame, objective: float) -> pl.DataFrame:
    """Over the days of :func:`daily_health`: the availability, the bad share the objective allows
    (1 - objective), the bad share there was, and the share of that budget spent and left (below
    0: overspent)."""
    traffic, bad = days["traffic"].sum(), days["bad"].sum()
    share = bad / traffic if traffic else 0.0
    allowed = 1 - objective
    spent = share / allowed if allowed else float("inf")
    return pl.DataFrame([(objective, 1 - share, allowed, share, spent, 1 - spent)], schema=BUDGET, orient="row")


def budget_burn(days: pl.DataFrame, objective: float) -> pl.DataFrame:
    """Day by day, the share of the whole range's error budget spent so far (the budget being
    (1 - objective) of the range's traffic)."""
    allowed = (1 - objective) * days["traffic"].sum()
    return days.select("day", spent=pl.col("bad").cum_sum() / allowed if allowed else pl.lit(None, pl.Float64))
