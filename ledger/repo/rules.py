"""Detector rule state: where each rule stands for each group of series, kept in the ledger so a
worker restart changes nothing (see detectors.state for the state machine)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from ledger.tables import RuleState


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
