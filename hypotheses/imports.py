"""Routing decisions logged by another system (an AI gateway run elsewhere), imported from
JSON Lines and compared with the declared routing policy.

One object per line: ``ts`` (ISO 8601; UTC unless it has an offset), ``task``, ``actual``
(the provider that served), and optionally ``declared`` (what that system meant to use),
``request_id``, ``tokens``, ``latency_ms``; other keys are ignored. Invalid lines are
reported with their numbers and the valid ones imported. A decision is known by its
``request_id`` (or, without one, by its content), so importing a file again adds nothing.

Reasons against the policy: ``none`` (the route's first provider served), ``failover`` (a
later provider of the route), ``off-policy`` (a provider outside the route), ``privacy`` (a
remote provider where the route allows local ones only), ``undeclared`` (no route for the task).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from hypotheses.errors import ImportFailed
from hypotheses.router import privacy_allows
from ledger.db import as_utc, write_session
from ledger.repo import hypotheses
from ledger.tables import RoutingDecision
from policies.jsondoc import parse_json_line
from policies.routing import RoutingFile
from policies.secrets import redact


class LoggedDecision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ts: datetime
    task: str = Field(min_length=1, max_length=100)
    actual: str = Field(min_length=1, max_length=200)
    declared: str | None = Field(default=None, max_length=200)
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    tokens: int | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)


@dataclass
class ImportReport:
    origin: str
    valid: int = 0
    imported: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def already_imported(self) -> int:
        return self.valid - self.imported


def import_decisions(engine: Engine, data: bytes, origin: str, routing: RoutingFile) -> ImportReport:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{origin} is not UTF-8 text (byte {exc.start})") from None
    report, decisions = ImportReport(origin), []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            decisions.append(decision_of(parse_line(line), origin, routing))
        except ValueError as exc:
            report.invalid.append((number, str(exc)))
    report.valid = len(decisions)
    with write_session(engine) as session:
        report.imported = hypotheses.import_routing_decisions(session, decisions)
    return report


def parse_line(line: str) -> tuple[LoggedDecision, dict]:
    raw = parse_json_line(line)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    try:
        return LoggedDecision.model_validate(raw), raw
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(map(str, first['loc'])) or 'line'}: {first['msg']}") from None


def decision_of(parsed: tuple[LoggedDecision, dict], origin: str, routing: RoutingFile) -> RoutingDecision:
    logged, raw = parsed
    at = as_utc(logged.ts)
    route, reason, detail = compare(routing, logged.task, logged.actual)
    if logged.declared and logged.declared != logged.actual:
        detail = f"{detail}; it declared {logged.declared} and used {logged.actual}".lstrip("; ")
    key = f"request:{logged.request_id}" if logged.request_id else \
        "line:" + hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
    return RoutingDecision(
        at=at, source="import", origin=redact(origin, emails=True), external_key=key,
        request_id=redact(logged.request_id, emails=True) if logged.request_id else None,
        task=redact(logged.task, emails=True), route=route, expected=route[0] if route else None,
        declared=redact(logged.declared, emails=True) if logged.declared else None,
        actual=redact(logged.actual, emails=True), reason=reason, detail=redact(detail, emails=True),
        privacy_refusals=0, latency_ms=logged.latency_ms, tokens=logged.tokens or 0,
        cost=(logged.tokens or 0) * routing.providers[logged.actual].cost_per_token
        if logged.actual in routing.providers else 0.0,
    )


def compare(routing: RoutingFile, task: str, actual: str) -> tuple[list[str], str, str]:
    """The task's route under the policy, and why ``actual`` differs from its first provider."""
    route = routing.routes.get(task)
    if route is None:
        return [], "undeclared", f"no route for task {task!r} in routing.yaml"
    provider = routing.providers.get(actual)
    if provider is not None and not privacy_allows(route, provider):
        return route.chain, "privacy", f"{actual} is {provider.privacy}; the route allows local providers only"
    if actual == route.chain[0]:
        return route.chain, "none", ""
    if actual in route.chain:
        return route.chain, "failover", f"{actual} is provider {route.chain.index(actual) + 1} of the route"
    where = "a provider outside the route" if provider is not None else "not a provider in routing.yaml"
    return route.chain, "off-policy", f"{actual} is {where}"
