"""What the workbench watches and how it is doing, for the overview when nothing is broken: every
target and rule of the policy with its current state and last result, the targets' uptime over
24 hours (per-minute rollups) and 30 days (per-hour rollups), grouped by service with one status
per service (the worst of its members, or of its open incidents)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import col, select

from ledger.db import read_session
from ledger.rollups import Rollups
from ledger.tables import Incident, Observation, RuleState, TargetState
from policies.loader import Policy

UPTIME_RANGES = {"uptime_24h": ("1m", timedelta(days=1)), "uptime_30d": ("1h", timedelta(days=30))}
STATUS_ORDER = ("down", "degraded", "ok", "unknown")  # worst first
UPTIME = """
SELECT target, sum(sum) / sum(count) AS uptime FROM rollups
WHERE name = 'probe_success' AND ts >= $since GROUP BY target
"""


class Member(BaseModel):
    """One target or rule group: ``status`` down (failing past its threshold, or firing), degraded
    (failing but not yet past it, or pending), ok, or unknown (not run yet)."""

    kind: str  # the probe kind (http, tcp, ...) or "rule"
    name: str
    status: str
    last_result: str
    last_at: datetime | None
    uptime_24h: float | None = None  # share of probe runs that passed; None for rules and unprobed targets
    uptime_30d: float | None = None


class ServiceHealth(BaseModel):
    service: str
    status: str
    open_incidents: list[int]
    members: list[Member]


def overview(engine: Engine, rollups: Rollups, policy: Policy, now: datetime) -> list[ServiceHealth]:
    """Every service of the policy (and any with an open incident), worst first, then by name."""
    uptimes = {key: _uptime(rollups, resolution, now - span) for key, (resolution, span) in UPTIME_RANGES.items()}
    with read_session(engine) as session:
        states = {s.target: s for s in session.exec(select(TargetState))}
        latest = dict(session.exec(select(Observation.target, func.max(Observation.id)).group_by(Observation.target)).all())
        last = {o.target: o for o in session.exec(select(Observation).where(col(Observation.id).in_(latest.values())))}
        rule_rows = list(session.exec(select(RuleState)))
        incidents = list(session.exec(select(Incident.id, Incident.service).where(col(Incident.resolved_at).is_(None))))
    members: dict[str, list[Member]] = {}
    for target in policy.targets:
        members.setdefault(target.service, []).append(
            _target(target, states.get(target.name), last.get(target.name),
                    {key: found.get(target.name) for key, found in uptimes.items()}))
    by_rule: dict[str, list[RuleState]] = {}
    for row in rule_rows:
        by_rule.setdefault(row.rule, []).append(row)
    for rule in policy.rules.resolved:
        if rule.enabled:
            service = rule.service or "rules"
            members.setdefault(service, []).extend(_rule(rule.name, by_rule.get(rule.name, [])))
    open_by_service: dict[str, list[int]] = {}
    for incident_id, service in incidents:
        open_by_service.setdefault(service, []).append(incident_id)
        members.setdefault(service, [])
    found = [ServiceHealth(service=service, status=_worst([m.status for m in listed], open_by_service.get(service)),
                           open_incidents=sorted(open_by_service.get(service, [])),
                           members=sorted(listed, key=lambda m: (STATUS_ORDER.index(m.status), m.name)))
             for service, listed in members.items()]
    return sorted(found, key=lambda s: (STATUS_ORDER.index(s.status), s.service))


def _uptime(rollups: Rollups, resolution: str, since: datetime) -> dict[str, float]:
    frame = rollups.stores[resolution].query(UPTIME, since, None, {"since": since})
    return dict(frame.iter_rows())


def _target(target, state: TargetState | None, last: Observation | None, uptime: dict) -> Member:
    if state is None or state.last_observed_at is None:
        status, result = "unknown", "not probed yet"
    elif state.active_finding_id is not None:
        status = "down"
    elif not state.last_ok:
        status = "degraded"
    else:
        status = "ok"
    if last is not None:
        result = "passed" if last.ok else f"failed: {last.error or 'a condition failed'}"
        if not last.ok and not last.error:
            failed = [c["text"] for c in last.checks if not c.get("ok")]
            result = f"failed: {'; '.join(failed)}" if failed else result
        if status != "down" and state is not None and state.consecutive_failures:
            result += f" ({state.consecutive_failures} of {target.failure_threshold} failures to fire)"
    return Member(kind=target.kind, name=target.name, status=status, last_result=result,
                  last_at=last.started_at if last else None, **uptime)


RULE_STATUS = {"firing": "down", "pending": "degraded", "inactive": "ok"}


def _rule(name: str, rows: list[RuleState]) -> list[Member]:
    """A rule as one member per group of series it has held for; one that never held (the detectors
    keep no state for it) is one member, ok."""
    if not rows:
        return [Member(kind="rule", name=name, status="ok", last_result="has not held", last_at=None)]
    found = []
    for row in rows:
        where = ", ".join(f"{k}={v}" for k, v in sorted(row.labels.items()) if v)
        value = "no value" if row.value is None else f"value {row.value:.4g}"
        found.append(Member(kind="rule", name=f"{name} ({where})" if where else name,
                            status=RULE_STATUS.get(row.state, "unknown"), last_result=f"{row.state}, {value}",
                            last_at=row.evaluated_at))
    return found


def _worst(statuses: list[str], open_incidents: list[int] | None) -> str:
    if open_incidents:
        return "down"
    known = [s for s in statuses if s != "unknown"]
    return min(known, key=STATUS_ORDER.index) if known else "unknown"
