"""The routing decisions as frames for the Routing page: decisions over time by provider,
the policy's route against the provider actually used, divergence reasons, daily token use
against each task's budget, privacy-gate refusals."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ledger.queries import DecisionItem
from policies.routing import RoutingFile

NONE = "(none)"
# A decision diverged when the provider used is not the route's first for a reason of routing
# (failover, a gate, the budget, an undeclared task, a provider off the policy). ``error`` is not
# one: the route was followed and no provider answered (a local model that is down), counted apart.
FOLLOWED = ("none", "error")
SCHEMA = {"id": pl.Int64, "at": pl.Datetime("us", "UTC"), "source": pl.String, "task": pl.String,
          "incident_id": pl.Int64, "expected": pl.String, "actual": pl.String, "reason": pl.String,
          "divergent": pl.Boolean, "privacy_refusals": pl.Int64, "latency_ms": pl.Float64, "tokens": pl.Int64,
          "cost": pl.Float64}


@dataclass(frozen=True)
class Divergence:
    decisions: pl.DataFrame
    over_time: pl.DataFrame  # bucket, actual, decisions
    route_vs_actual: pl.DataFrame  # expected, actual, decisions
    reasons: pl.DataFrame  # reason, decisions (divergent ones)
    budget: pl.DataFrame  # day, task, tokens, cost, budget
    privacy_refusals: int

    @property
    def divergent_share(self) -> float:
        return self.decisions["divergent"].mean() if self.decisions.height else 0.0

    @property
    def unserved(self) -> int:
        """Decisions no provider served: the route was followed, every provider failed."""
        return int((self.decisions["actual"] == NONE).sum())


def frame(decisions: list[DecisionItem]) -> pl.DataFrame:
    return pl.DataFrame([{"id": d.id, "at": d.at, "source": d.source, "task": d.task, "incident_id": d.incident_id,
                          "expected": d.expected or NONE, "actual": d.actual or NONE, "reason": d.reason,
                          "divergent": diverged(d.reason), "privacy_refusals": d.privacy_refusals,
                          "latency_ms": d.latency_ms, "tokens": d.tokens, "cost": d.cost} for d in decisions],
                        schema=SCHEMA)


def select(decisions: list[DecisionItem], *, tasks: list[str], providers: list[str], sources: list[str],
           divergent_only: bool) -> list[DecisionItem]:
    """The decisions the Routing page's filters keep (an empty filter keeps all)."""
    return [d for d in decisions if (not tasks or d.task in tasks)
            and (not providers or (d.actual or NONE) in providers)
            and (not sources or d.source in sources) and (not divergent_only or diverged(d.reason))]


def diverged(reason: str) -> bool:
    return reason not in FOLLOWED


def summarize(decisions: list[DecisionItem], routing: RoutingFile, bucket: str) -> Divergence:
    """``bucket``: a polars duration for the time axis, e.g. ``1h`` or ``1d``."""
    rows = frame(decisions)
    over_time = (rows.with_columns(pl.col("at").dt.truncate(bucket).alias("bucket"))
                 .group_by("bucket", "actual").agg(pl.len().alias("decisions")).sort("bucket", "actual"))
    route_vs_actual = rows.group_by("expected", "actual").agg(pl.len().alias("decisions")).sort("expected", "actual")
    reasons = (rows.filter(pl.col("divergent")).group_by("reason").agg(pl.len().alias("decisions"))
               .sort("decisions", "reason", descending=[True, False]))
    budgets = pl.DataFrame({"task": list(routing.routes),
                            "budget": [r.daily_token_budget for r in routing.routes.values()]},
                           schema={"task": pl.String, "budget": pl.Int64})
    budget = (rows.filter(pl.col("source") == "workbench").with_columns(pl.col("at").dt.date().alias("day"))
              .group_by("day", "task").agg(pl.col("tokens").sum(), pl.col("cost").sum())
              .join(budgets, on="task", how="left").sort("day", "task"))
    return Divergence(rows, over_time, route_vs_actual, reasons, budget, int(rows["privacy_refusals"].sum()))
