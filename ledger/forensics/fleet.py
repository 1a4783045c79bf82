"""The fleet over a time range, as Polars frames: incidents per service and rule, time to
acknowledge and resolve (MTTA, MTTR), time spent in each state, noise (episodes, flaps, the
share suppressed and the share the operator called noise, per rule and target), and the
routing of model calls with their cost.

    >>> since, until = now - timedelta(days=30), now
    >>> forensics.response_times(engine, since, until)
    >>> forensics.noise(engine, since, until).sort("episodes", descending=True).head(10)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from ledger import queries
from ledger.forensics.frames import TIME, to_frame
from ledger.forensics.incident import INCIDENT
from ledger.lifecycle import RESOLVED, Verdict

FLAP_WITHIN = timedelta(minutes=10)
EPISODE = {"id": pl.Int64, "rule": pl.String, "target": pl.String, "service": pl.String, "severity": pl.String,
           "incident_id": pl.Int64, "first_seen": TIME, "recovered_at": TIME, "suppressed_by": pl.String,
           "feedback": pl.String}
STATE_SPAN = {"incident_id": pl.Int64, "service": pl.String, "state": pl.String, "start": TIME, "end": TIME,
              "seconds": pl.Float64}
DECISION = {"id": pl.Int64, "at": TIME, "source": pl.String, "task": pl.String, "incident_id": pl.Int64,
            "category": pl.String, "expected": pl.String, "declared": pl.String, "actual": pl.String,
            "reason": pl.String, "latency_ms": pl.Float64, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64,
            "tokens": pl.Int64, "cost": pl.Float64}


def incidents_in_range(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """The incidents open at some time in [since, until], oldest first."""
    return to_frame(queries.incidents_in_window(engine, since, until), INCIDENT)


def episodes(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Every firing episode (finding) in [since, until], suppressed ones too, with the incident
    it is on and the operator's verdict."""
    return to_frame(queries.findings_in_window(engine, since, until), EPISODE)


def incidents_by_service_and_rule(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Per service and rule: the incidents its unsuppressed findings are on, and those findings.

    >>> forensics.incidents_by_service_and_rule(engine, since, until).sort("incidents", descending=True)
    """
    found = episodes(engine, since, until).filter(pl.col("incident_id").is_not_null()
                                                  & pl.col("suppressed_by").is_null())
    return (found.group_by("service", "rule")
            .agg(incidents=pl.col("incident_id").n_unique(), findings=pl.len())
            .sort("service", "rule"))


def response_times(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Per service, of the incidents opened in [since, until]: how many, how many acknowledged and
    resolved, mean time to acknowledge (MTTA: acknowledgement as the incident records it, by an
    operator in the app, the CLI or a channel) and to resolve (MTTR), in seconds.

    >>> forensics.response_times(engine, since, until).select("service", "mtta_seconds", "mttr_seconds")
    """
    opened = incidents_in_range(engine, since, until).filter(pl.col("opened_at") >= since)
    return (opened.group_by("service")
            .agg(incidents=pl.len(), acknowledged=pl.col("acknowledged_at").count(),
                 resolved=pl.col("resolved_at").count(), mtta_seconds=pl.col("seconds_to_acknowledge").mean(),
                 mttr_seconds=pl.col("seconds_to_resolve").mean())
            .sort("service"))


def state_spans(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Each stay of each incident in a state (from one transition to the next; the last open one
    until ``until``), clipped to [since, until]."""
    found = incidents_in_range(engine, since, until)
    service = dict(zip(found["id"], found["service"]))
    rows = []
    moves = queries.transitions(engine, found["id"].to_list())
    for move, after in zip(moves, [*moves[1:], None]):
        if move.to_state == RESOLVED:
            continue
        end = after.at if after is not None and after.incident_id == move.incident_id else until
        start, end = max(move.at, since), min(end, until)
        if end > start:
            rows.append({"incident_id": move.incident_id, "service": service[move.incident_id],
                         "state": move.to_state, "start": start, "end": end,
                         "seconds": (end - start).total_seconds()})
    return to_frame(rows, STATE_SPAN)


def time_in_state(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Per state: incidents that were in it in [since, until], total and mean seconds spent there.

    >>> forensics.time_in_state(engine, since, until)
    """
    return (state_spans(engine, since, until).group_by("state")
            .agg(incidents=pl.col("incident_id").n_unique(), total_seconds=pl.col("seconds").sum(),
                 mean_seconds=pl.col("seconds").sum() / pl.col("incident_id").n_unique())
            .sort("total_seconds", descending=True))


def noise(engine: Engine, since: datetime, until: datetime, flap_within: timedelta = FLAP_WITHIN) -> pl.DataFrame:
    """Per rule and target, its episodes in [since, until]: how many, how many were flaps (began
    within ``flap_within`` of the previous one's recovery), the incidents they opened, the share
    suppressed (a silence, a maintenance window or a parent incident) and the share the operator
    marked noise; the noisiest first.

    >>> forensics.noise(engine, since, until).filter(pl.col("episodes") > 5)
    """
    found = episodes(engine, since, until).sort("rule", "target", "first_seen", "id")
    previous_end = pl.col("recovered_at").shift(1).over("rule", "target")
    flagged = found.with_columns(
        flap=(pl.col("first_seen") - previous_end <= flap_within).fill_null(False),
        suppressed=pl.col("suppressed_by").is_not_null(),
        said_noise=pl.col("feedback") == Verdict.NOISE)
    return (flagged.group_by("rule", "target")
            .agg(service=pl.col("service").first(), episodes=pl.len(), flaps=pl.col("flap").sum(),
                 incidents=pl.col("incident_id").filter(~pl.col("suppressed")).n_unique(),
                 suppressed_share=pl.col("suppressed").mean(),
                 noise_share=pl.col("said_noise").fill_null(False).mean())
            .sort(["episodes", "rule", "target"], descending=[True, False, False]))


def routing_decisions(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Every routed model call in [since, until], oldest first: the provider the policy expected,
    the one that served (null: none did) and why they differ, tokens, cost and latency."""
    return to_frame(reversed(queries.routing_decisions(engine, since=since, until=until)), DECISION)


def model_cost(engine: Engine, since: datetime, until: datetime) -> pl.DataFrame:
    """Per task and provider that served: calls, calls off the expected route, tokens, cost and
    mean latency in [since, until].

    >>> forensics.model_cost(engine, since, until).select("task", "actual", "calls", "cost")
    """
    return (routing_decisions(engine, since, until)
            .group_by("task", "actual")
            .agg(calls=pl.len(), rerouted=(pl.col("reason") != "none").sum(), tokens=pl.col("tokens").sum(),
                 cost=pl.col("cost").sum(), mean_latency_ms=pl.col("latency_ms").mean())
            .sort("task", "actual", nulls_last=True))
