"""A rule's backtest as the operator reads it, on the command line and the pages: the replay over
stored samples (detectors/backtest.py), scored against the ledger's incidents of the rule's
services opened in the range (leaving out those the rule alone opened live), and compared with
what the rule did live."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import Engine

from detectors.backtest import KnownIncident, compare_live, meets, replay, score
from ledger import queries
from ledger.db import as_utc, read_session
from ledger.lifecycle import SuggestionStatus, Verdict
from ledger.repo import rules as rule_repo
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.rules import Rule
from policies.schema import format_duration

RULE = TypeAdapter(Rule)


class EpisodeItem(BaseModel):
    start: datetime
    end: datetime | None  # None: still firing at the end of the range
    group: dict[str, str]


class IncidentItem(BaseModel):
    id: int
    title: str
    opened_at: datetime
    caught: bool
    lead_time_seconds: float | None  # episode start minus incident open; negative: the rule saw it first


class BacktestReport(BaseModel):
    """The stable JSON shape of ``workbench rules backtest --format json``."""

    model_config = ConfigDict(populate_by_name=True)
    rule: str
    from_: datetime = Field(alias="from")
    to: datetime
    interval_seconds: float
    evaluations: int
    episodes: list[EpisodeItem]
    fires_per_day: float
    time_in_alert_ratio: float
    flaps: int
    services: list[str]
    incidents: dict[str, list[int]]  # caught, missed: incident ids
    incident_details: list[IncidentItem]
    recall: float | None
    precision: float | None
    lead_time_seconds: dict[str, float | None]  # median
    live: dict[str, int]  # both, replay_only, live_only
    marked: dict[str, int]  # useful, noise: episodes over live firings the operator marked so (expected as noise)
    warnings: list[str]

    def as_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


def backtest(engine: Engine, store: SampleStore, policy, name: str, start: datetime, end: datetime) -> BacktestReport:
    """The backtest of the policy's rule ``name``, or else of the pending suggestion of that name
    (beside what the rule it would succeed did live)."""
    rule = next((r for r in policy.rules.resolved if r.name == name), None)
    if rule is not None:
        return backtest_rule(engine, store, policy, rule, start, end)
    with read_session(engine) as session:
        suggested = next(iter(rule_repo.suggestions(session, [SuggestionStatus.PENDING], name=name)), None)
    if suggested is None:
        known = ", ".join(sorted(r.name for r in policy.rules.resolved)) or "none"
        raise WorkbenchError(f"no rule named {name!r} in the policy (its rules: {known}) nor a pending suggestion")
    return backtest_rule(engine, store, policy, RULE.validate_python(suggested.rule), start, end, suggested.replaces)


def backtest_rule(engine: Engine, store: SampleStore, policy, rule, start: datetime, end: datetime,
                  history_of: str | None = None) -> BacktestReport:
    """The backtest of ``rule``, in the policy or not (a suggestion), at the policy's evaluation
    interval; compared with what the rule ``history_of`` (default: itself) did live and the
    operator said of it."""
    name = rule.name
    if start >= end:
        raise WorkbenchError(f"the range is empty: from {start.isoformat()} is not before to {end.isoformat()}")
    result = replay(rule, store, start, end, policy.rules.noise)
    history = queries.rule_history(engine, f"rule:{history_of or name}", result.start, end)
    incidents = [KnownIncident(i.id, i.title, as_utc(i.opened_at), i.resolved_at and as_utc(i.resolved_at))
                 for service in sorted(result.services)
                 for i in queries.incidents_in_window(engine, result.start, end, service=service)
                 if as_utc(i.opened_at) >= result.start and i.id not in history.own_incidents]
    incidents.sort(key=lambda i: (i.opened_at, i.id))
    useful = [span for span, said in zip(history.episodes, history.verdicts) if said == Verdict.USEFUL]
    noise = [span for span, said in zip(history.episodes, history.verdicts) if said in (Verdict.NOISE, Verdict.EXPECTED)]
    found = score(result.episodes, incidents, end, useful)
    leads = dict(zip((i.id for i in found.caught), found.lead_times))
    warnings = list(result.warnings)
    if not result.services:
        warnings.append("its groups name no service: there are no incidents to score it against")
    elif not incidents:
        warnings.append(f"no incident of {', '.join(sorted(result.services))} opened in the range: recall counts nothing")
    return BacktestReport(
        rule=name, from_=result.start, to=end, interval_seconds=result.interval.total_seconds(),
        evaluations=result.evaluations,
        episodes=[EpisodeItem(start=e.start, end=e.end, group=e.group) for e in result.episodes],
        fires_per_day=round(result.fires_per_day(), 3), time_in_alert_ratio=round(result.time_in_alert_ratio(), 4),
        flaps=result.flaps, services=sorted(result.services),
        incidents={"caught": [i.id for i in found.caught], "missed": [i.id for i in found.missed]},
        incident_details=[IncidentItem(id=i.id, title=i.title, opened_at=i.opened_at, caught=i.id in leads,
                                       lead_time_seconds=leads.get(i.id)) for i in incidents],
        recall=found.recall(), precision=found.precision(len(result.episodes)),
        lead_time_seconds={"median": found.median_lead_time()},
        live=compare_live(result.episodes, history.episodes, end),
        marked={"useful": sum(meets(e, useful, end) for e in result.episodes),
                "noise": sum(meets(e, noise, end) for e in result.episodes)}, warnings=warnings)


def backtest_text(report: BacktestReport) -> str:
    """The report for people: the figures, the episodes, the incidents, the warnings."""
    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    median = report.lead_time_seconds["median"]
    lines = [
        f"rule {report.rule}: {report.from_:%Y-%m-%d %H:%M}Z to {report.to:%Y-%m-%d %H:%M}Z, "
        f"{report.evaluations:,} evaluations every {format_duration(timedelta(seconds=report.interval_seconds))}",
        f"  episodes {len(report.episodes)} ({report.fires_per_day:g} a day), in alert {ratio(report.time_in_alert_ratio)}"
        f" of the time, flaps {report.flaps}",
        f"  incidents of {', '.join(report.services) or '-'}: caught {len(report.incidents['caught'])}, missed "
        f"{len(report.incidents['missed'])}; recall {ratio(report.recall)}, precision {ratio(report.precision)}, "
        f"median lead time {'-' if median is None else f'{median:+.0f} s'}",
        f"  live: {report.live['both']} episodes in both, {report.live['replay_only']} only in the replay, "
        f"{report.live['live_only']} only live",
    ]
    if report.episodes:
        lines.append("\nEpisodes:")
        lines += [f"  {e.start:%Y-%m-%d %H:%M:%S}Z to {f'{e.end:%Y-%m-%d %H:%M:%S}Z' if e.end else 'still firing':<21} "
                  f"{', '.join(f'{k}={v}' for k, v in e.group.items())}" for e in report.episodes]
    if report.incident_details:
        lines.append("\nIncidents:")
        lines += [f"  #{i.id:<5} {'caught' if i.caught else 'MISSED':<7}"
                  f"{'' if i.lead_time_seconds is None else f'{i.lead_time_seconds:+.0f} s':>9}  "
                  f"{i.opened_at:%Y-%m-%d %H:%M}Z {i.title}" for i in report.incident_details]
    if report.warnings:
        lines += ["", *(f"warning: {w}" for w in report.warnings)]
    return "\n".join(lines)

