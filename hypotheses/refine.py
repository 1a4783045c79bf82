"""An incident's hypotheses: the draft (always, at once) and a model's refinement of it,
requested by the operator or by the worker's background job, routed by the policy and kept
in the ledger as a hypothesis run. A refinement that cannot be had fails closed: the run is
marked failed with the reason and the draft stands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from hypotheses.answer import answer_schema, parse_answer, refine
from hypotheses.draft import draft
from hypotheses.evidence import ledger_evidence, series_evidence, version_changes, window
from hypotheses.models import Draft, Refinement, evidence_key
from hypotheses.prompt import messages
from hypotheses.router import Call, Router
from ledger import queries
from ledger.db import utcnow, write_session
from ledger.lifecycle import OPEN_STATES, RunStatus
from ledger.queries import DecisionItem, HypothesisRunItem, IncidentDetail
from ledger.repo import hypotheses
from ledger.samples import SampleStore
from policies.loader import Policy

TASK = "hypothesis"
WORKER = "worker"


@dataclass(frozen=True)
class HypothesesView:
    draft: Draft
    run: HypothesisRunItem | None  # the newest refinement run, if any
    refinement: Refinement | None  # its result, when it is done
    decision: DecisionItem | None  # how its call was routed

    def as_json(self) -> dict:
        """The stable JSON shape of ``workbench incidents hypotheses ID --format json``."""
        refinement = None
        if self.run is not None:
            refinement = {
                **self.run.model_dump(mode="json", include={"id", "status", "requested_by", "requested_at",
                                                            "started_at", "finished_at", "reason"}),
                "hypotheses": [h.model_dump(mode="json") for h in self.refinement.hypotheses] if self.refinement
                else None,
                "changes": [c.model_dump(mode="json") for c in self.refinement.changes] if self.refinement else None,
                "decision": self.decision.model_dump(mode="json") if self.decision else None,
            }
        return {"incident_id": self.draft.incident_id,
                **self.draft.model_dump(mode="json", include={"since", "opened_at", "until", "evidence"}),
                "draft": [h.model_dump(mode="json") for h in self.draft.hypotheses], "refinement": refinement}


def incident_draft(engine: Engine, store: SampleStore, policy: Policy, incident_id: int,
                   now: datetime) -> tuple[IncidentDetail, Draft]:
    detail = queries.incident_detail(engine, incident_id)
    gathering = policy.hypotheses.evidence
    since, until = window(detail, gathering, now)
    evidence = [*ledger_evidence(engine, detail, gathering, since, until, now),
                *series_evidence(store, detail, gathering, since, until),
                *version_changes(store, detail.service, sorted({f.target for f in detail.findings}), since, until,
                                 detail.opened_at)]
    return detail, draft(detail, evidence, policy.hypotheses, since, until)


def hypotheses_view(engine: Engine, store: SampleStore, policy: Policy, incident_id: int,
                    now: datetime) -> HypothesesView:
    _, drafted = incident_draft(engine, store, policy, incident_id, now)
    run = queries.latest_hypothesis_runs(engine, [incident_id]).get(incident_id)
    refinement = Refinement.model_validate(run.refinement) if run and run.refinement else None
    decision = queries.routing_decision(engine, run.decision_id) if run and run.decision_id else None
    return HypothesesView(drafted, run, refinement, decision)


def request(engine: Engine, incident_id: int, requested_by: str, now: datetime) -> HypothesisRunItem:
    """Ask for a refinement; the worker does it in the background."""
    with write_session(engine) as session:
        run = hypotheses.request_refinement(session, incident_id, requested_by, now)
        return HypothesisRunItem.model_validate(run, from_attributes=True)


def run_refinement(engine: Engine, store: SampleStore, policy: Policy, run: HypothesisRunItem, secrets: Iterable[str],
                   now: Callable[[], datetime] = utcnow) -> HypothesisRunItem:
    """Draft, ask the model through the router, record the outcome on the run."""
    detail, drafted = incident_draft(engine, store, policy, run.incident_id, now())
    with write_session(engine) as session:
        hypotheses.start_refinement(session, run.id, drafted.evidence_key, drafted.model_dump(mode="json"), now())
    refinement, reason, decision_id = None, "nothing to refine: the incident has no evidence yet", None
    try:
        if drafted.evidence:
            routed = Router(policy.routing, engine, now=now).route(hypothesis_call(detail, drafted, secrets))
            decision_id = routed.decision.id
            if routed.answer is not None:
                refinement, reason = refine(drafted, routed.answer).model_dump(mode="json"), None
            else:
                reason = f"{routed.decision.reason}: {routed.decision.detail}"
    except Exception as exc:
        reason = f"refinement failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        with write_session(engine) as session:
            done = hypotheses.finish_refinement(session, run.id, now(), refinement=refinement, reason=reason,
                                          decision_id=decision_id)
            finished = HypothesisRunItem.model_validate(done, from_attributes=True)
    return finished


def hypothesis_call(detail: IncidentDetail, drafted: Draft, secrets: Iterable[str]) -> Call:
    categories = tuple(sorted({e.labels.get("category", "other") for e in drafted.evidence if e.kind == "finding"}))
    return Call(task=TASK, incident_id=detail.id, categories=categories, messages=messages(detail, drafted, secrets),
                schema=answer_schema(drafted), parse=lambda content: parse_answer(content, drafted))


def refine_due(engine: Engine, store: SampleStore, policy: Policy, secrets: Iterable[str],
               now: Callable[[], datetime] = utcnow) -> list[HypothesisRunItem]:
    """The worker's job: runs left running by a stopped worker fail; then the operator's
    requests, and (when ``refinement.enabled``) open incidents whose ledger evidence changed
    since their last run, up to ``per_run`` of them. The job never overlaps itself."""
    settings = policy.routing.refinement
    with write_session(engine) as session:
        hypotheses.fail_stale_refinements(session, now(), now())
    due = queries.pending_hypothesis_runs(engine)
    if settings.enabled and len(due) < settings.per_run:
        due += _changed_incidents(engine, policy, {run.incident_id for run in due}, settings.per_run - len(due), now())
    return [run_refinement(engine, store, policy, run, secrets, now) for run in due[:settings.per_run]]


def _changed_incidents(engine: Engine, policy: Policy, skip: set[int], wanted: int,
                       now: datetime) -> list[HypothesisRunItem]:
    gathering = policy.hypotheses.evidence
    incidents = [i for i in queries.list_incidents(engine, states=list(OPEN_STATES)) if i.id not in skip]
    latest = queries.latest_hypothesis_runs(engine, [i.id for i in incidents])
    found = []
    for incident in reversed(incidents):  # oldest update first
        detail = queries.incident_detail(engine, incident.id)
        since, until = window(detail, gathering, now)
        key = evidence_key(ledger_evidence(engine, detail, gathering, since, until, now))
        run = latest.get(incident.id)
        if run is None or (run.evidence_key != key and run.status in (RunStatus.DONE, RunStatus.FAILED)):
            found.append(request(engine, incident.id, WORKER, now))
            if len(found) == wanted:
                break
    return found
