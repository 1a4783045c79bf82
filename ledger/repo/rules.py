"""Detector rules in the ledger: where each rule stands for each group of series, kept so a worker
restart changes nothing (see detectors.state for the state machine); rule suggestions learned
from history and the operator's decisions on them; the revisions of learned rules. What a
suggestion says (its rule, why) is masked as it is kept."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from ledger.errors import NotFound
from ledger.lifecycle import SuggestionStatus
from ledger.repo.rows import get, mask
from ledger.tables import RuleRevision, RuleState, RuleSuggestion


def rule_states(session: Session) -> dict[tuple[str, str], RuleState]:
    """Every rule's state by (rule, group)."""
    return {(row.rule, row.group): row for row in session.exec(select(RuleState)).all()}


def add_rule_state(session: Session, rule: str, group: str, labels: dict[str, str]) -> RuleState:
    row = RuleState(rule=rule, group=group, labels=labels)
    session.add(row)
    return row


def save_rule_state(row: RuleState, *, state: str, active: bool, pending_since: datetime | None,
                    firing_since: datetime | None, last_active_at: datetime | None, flapping: bool,
                    flips: list[datetime], value: float | None, evaluated_at: datetime) -> None:
    row.state, row.active, row.pending_since, row.firing_since = state, active, pending_since, firing_since
    row.last_active_at, row.flapping, row.flips = last_active_at, flapping, [t.isoformat() for t in flips]
    row.value, row.evaluated_at = value, evaluated_at


def delete_rule_state(session: Session, row: RuleState) -> None:
    session.delete(row)


def add_suggestion(session: Session, suggestion: RuleSuggestion) -> RuleSuggestion:
    """Keep ``suggestion``; a pending one for the same rule is superseded by it."""
    for older in session.exec(select(RuleSuggestion).where(RuleSuggestion.name == suggestion.name,
                                                           RuleSuggestion.status == SuggestionStatus.PENDING)):
        older.status = SuggestionStatus.SUPERSEDED
    session.add(mask(session, suggestion, ("rule", "why", "provenance")))
    session.flush()
    return suggestion


def suggestion(session: Session, suggestion_id: int) -> RuleSuggestion:
    return get(session, RuleSuggestion, suggestion_id)


def suggestions(session: Session, statuses: list[str] | None = None, name: str | None = None) -> list[RuleSuggestion]:
    """Rule suggestions, newest first: of these statuses, for the rule ``name``."""
    query = select(RuleSuggestion).order_by(col(RuleSuggestion.id).desc())
    if statuses:
        query = query.where(col(RuleSuggestion.status).in_(statuses))
    if name is not None:
        query = query.where(RuleSuggestion.name == name)
    return list(session.exec(query))


def decide_suggestion(session: Session, suggestion_id: int, status: str, actor: str, reason: str,
                      now: datetime) -> None:
    row = get(session, RuleSuggestion, suggestion_id)
    row.status, row.decided_by, row.decided_at, row.reason = status, actor, now, reason
    mask(session, row, ("reason",))


def add_revision(session: Session, name: str, rule: dict | None, suggestion_id: int | None, actor: str,
                 now: datetime, reason: str, backtest: dict) -> int:
    """The next revision of the learned rule ``name``; return its number."""
    last = session.exec(select(func.max(RuleRevision.revision)).where(RuleRevision.name == name)).one() or 0
    session.add(mask(session, RuleRevision(name=name, revision=last + 1, rule=rule, suggestion_id=suggestion_id,
                                           actor=actor, at=now, reason=reason, backtest=backtest), ("reason",)))
    return last + 1


def revision(session: Session, name: str, number: int) -> RuleRevision:
    row = session.exec(select(RuleRevision).where(RuleRevision.name == name,
                                                  RuleRevision.revision == number)).first()
    if row is None:
        raise NotFound(f"no revision {number} of the learned rule {name!r}")
    return row


def revisions(session: Session, name: str) -> list[RuleRevision]:
    return list(session.exec(select(RuleRevision).where(RuleRevision.name == name)
                             .order_by(col(RuleRevision.revision))))
