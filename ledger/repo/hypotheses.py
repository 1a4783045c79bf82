"""Routing decisions of LLM calls and the model's refinements of drafted hypotheses, masked
(secret values and shapes) as they are kept: drafts quote evidence, details quote servers."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from ledger.lifecycle import RunStatus
from ledger.repo.rows import get, mask, masked
from ledger.tables import HypothesisRun, Incident, RoutingDecision

# what a decision takes from providers' answers and from imported logs
DECISION_TEXT = ("origin", "request_id", "task", "category", "route", "expected", "declared", "actual", "detail",
                 "attempts")


def add_routing_decision(session: Session, decision: RoutingDecision) -> RoutingDecision:
    session.add(mask(session, decision, DECISION_TEXT))
    session.flush()
    return decision


def import_routing_decisions(session: Session, decisions: list[RoutingDecision]) -> int:
    """Add the imported decisions whose external key is not in the ledger yet; return how many."""
    keys = [d.external_key for d in decisions]
    known = set(session.exec(select(RoutingDecision.external_key)
                             .where(col(RoutingDecision.external_key).in_(keys))).all())
    added = 0
    for decision in decisions:
        if decision.external_key not in known:
            known.add(decision.external_key)
            session.add(mask(session, decision, DECISION_TEXT))
            added += 1
    return added


def request_refinement(session: Session, incident_id: int, requested_by: str, now: datetime) -> HypothesisRun:
    """Ask for a model's refinement of an incident's hypotheses; a request already waiting or
    running is returned instead of a second one."""
    get(session, Incident, incident_id)
    waiting = session.exec(select(HypothesisRun).where(HypothesisRun.incident_id == incident_id,
                                                       col(HypothesisRun.status).in_((RunStatus.PENDING, RunStatus.RUNNING)))).first()
    if waiting is not None:
        return waiting
    run = HypothesisRun(incident_id=incident_id, requested_by=requested_by, requested_at=now)
    session.add(run)
    session.flush()
    return run


def start_refinement(session: Session, run_id: int, evidence_key: str, draft: dict, now: datetime) -> HypothesisRun:
    run = get(session, HypothesisRun, run_id)
    run.status, run.started_at, run.evidence_key = RunStatus.RUNNING, now, evidence_key
    run.draft = masked(session, draft)
    return run


def finish_refinement(session: Session, run_id: int, now: datetime, *, refinement: dict | None, reason: str | None,
                      decision_id: int | None) -> HypothesisRun:
    """Done with the model's refinement, or failed with the reason (the draft stands)."""
    run = get(session, HypothesisRun, run_id)
    run.status = RunStatus.DONE if refinement is not None else RunStatus.FAILED
    run.finished_at, run.decision_id = now, decision_id
    run.refinement, run.reason = masked(session, refinement), masked(session, reason)
    return run


def fail_stale_refinements(session: Session, started_before: datetime, now: datetime) -> int:
    """Runs still marked running that started before ``started_before`` (their worker stopped)
    fail; return how many."""
    stale = session.exec(select(HypothesisRun).where(HypothesisRun.status == RunStatus.RUNNING,
                                                     col(HypothesisRun.started_at) < started_before)).all()
    for run in stale:
        run.status, run.finished_at, run.reason = RunStatus.FAILED, now, "interrupted: the worker stopped before it finished"
    return len(stale)

