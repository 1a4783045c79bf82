"""The worker's remediation pass.

    propose what open incidents' rules and categories recommend -> expire requests that
    waited too long -> fail runs interrupted by a stop -> for each approved request: ask the
    gate again and check its approval token (signed, for exactly this request, unexpired,
    unused), spend it, run the action, record the redacted output -> verify by probing the
    incident's targets again: contained (containment) or recovering (disruptive) only if all pass

A request that is refused, fails or times out is recorded and never run again: running it
again takes a new proposal, which the gate's cooldown and attempt limits (kept in the
ledger, so a restart changes nothing) may refuse.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from ledger import lifecycle, queries
from ledger.db import read_session, utcnow, write_session
from ledger.lifecycle import RequestStatus, Verification
from ledger.repo import actions, incidents, rows
from ledger.tables import ActionRequest
from policies.actions import Action
from policies.loader import Policy
from probes.context import ProbeContext
from probes.cycle import probe
from remediation import flow, tokens
from remediation.errors import GateRefused, RemediationError, TokenRefused
from remediation.runners import RunResult, plan, run

log = logging.getLogger("workbench.remediation")
INTERRUPT_GRACE = timedelta(seconds=30)  # past its timeout and this, a run is taken as interrupted
VERIFIED_STATE = {"containment": lifecycle.CONTAINED, "disruptive": lifecycle.RECOVERING}


@dataclass
class PassOutcome:
    proposed: int = 0
    expired: int = 0
    interrupted: int = 0
    results: dict[str, int] = field(default_factory=dict)  # refused, succeeded, failed, timed_out
    verifications: dict[str, int] = field(default_factory=dict)  # passed, failed, skipped
    seconds: list[float] = field(default_factory=list)  # of each run

    def count(self, result: str) -> None:
        self.results[result] = self.results.get(result, 0) + 1


@dataclass(frozen=True)
class Claimed:
    request_id: int
    incident_id: int
    action: Action
    parameters: dict


async def run_pass(engine: Engine, policy: Policy, data_dir: Path, ctx: ProbeContext, *,
                   env: Mapping[str, str] = os.environ, now: Callable[[], datetime] = utcnow) -> PassOutcome:
    """One pass; the worker runs it every ``remediation_interval``."""
    outcome = PassOutcome()
    outcome.proposed = len(await asyncio.to_thread(flow.propose_recommended, engine, policy, now()))
    outcome.expired = await asyncio.to_thread(flow.expire_stale, engine, now())
    outcome.interrupted = await asyncio.to_thread(interrupt_stale, engine, policy, now())
    ready = await asyncio.to_thread(queries.ready_action_requests, engine)
    if not ready:
        return outcome
    key = tokens.signing_key(policy.settings.approval_key_env, data_dir, env)
    runner_env = {name: value for name, value in env.items() if name != policy.settings.approval_key_env}
    for request_id in ready:
        try:
            claimed = await asyncio.to_thread(claim, engine, policy, key, request_id, now())
        except RemediationError as exc:
            log.warning("action request #%d refused: %s", request_id, exc)
            outcome.count("refused")
            continue
        if claimed is None:
            continue
        result = await asyncio.to_thread(run, claimed.action, claimed.parameters, runner_env,
                                         policy.settings.action_output_max_bytes)
        await asyncio.to_thread(finish, engine, claimed, result, now())
        outcome.count(result.status)
        outcome.seconds.append(result.seconds)
        log.info("action request #%d %s %s", request_id, claimed.action.id, result.status)
        if result.status == RequestStatus.SUCCEEDED:
            verdict = await verify(engine, policy, claimed, ctx, now)
            outcome.verifications[verdict] = outcome.verifications.get(verdict, 0) + 1
    return outcome


def claim(engine: Engine, policy: Policy, key: bytes, request_id: int, now: datetime) -> Claimed | None:
    """Take an approved request to run it: the gate and the approval token are checked and the
    token spent in one transaction. None when it is no longer approved (another pass took
    it); GateRefused or TokenRefused, once the refusal is on the timeline."""
    with write_session(engine) as session:
        request = actions.action_request(session, request_id)
        if request.status != RequestStatus.APPROVED:
            return None
        action = policy.actions.action(request.action)
        refusal = _refusal(session, policy, key, request, action, now)
        if refusal is not None:
            actions.update_action_request(session, request, rows.SYSTEM, now, f"refused before running: {refusal}",
                                       status=RequestStatus.REFUSED, finished_at=now)
        else:
            if action.needs_approval or request.needs_approval:
                actions.spend_approval(session, request, now)
            actions.update_action_request(session, request, rows.SYSTEM, now, f"running: {plan(action, request.parameters)}",
                                       status=RequestStatus.RUNNING, started_at=now)
            claimed = Claimed(request.id, request.incident_id, action, dict(request.parameters))
    if refusal is not None:
        raise refusal
    return claimed


def _refusal(session, policy: Policy, key: bytes, request: ActionRequest, action: Action | None,
             now: datetime) -> RemediationError | None:
    checked = flow.verdict(session, policy, request.action, request.parameters, request.incident_id, now)
    if not checked.ok:
        return GateRefused(f"the gate: {checked.refusal}")
    if not (action.needs_approval or request.needs_approval):
        return None
    if not (request.approval_token and request.approval_id):
        return TokenRefused("no approval token, and this action needs the operator's approval")
    spent = actions.approval_spent(session, request.approval_id)
    if spent is not None:
        return TokenRefused(f"approval token refused: replayed: approval {request.approval_id} was used at "
                            f"{spent.used_at:%Y-%m-%d %H:%M:%S} UTC by request #{spent.request_id}")
    expected = {"id": request.approval_id, "request": request.id, "incident": request.incident_id,
                "action": request.action, "parameters": request.parameters}
    try:
        tokens.verify(key, request.approval_token, expected, now)
    except TokenRefused as exc:
        return TokenRefused(f"approval token refused: {exc}")
    return None


def finish(engine: Engine, claimed: Claimed, result: RunResult, now: datetime) -> None:
    with write_session(engine) as session:
        request = actions.action_request(session, claimed.request_id)
        first_line = result.output.splitlines()[0] if result.output else ""
        actions.update_action_request(session, request, rows.SYSTEM, now,
                                   f"{result.status.replace('_', ' ')} after {result.seconds:.2f}s: {first_line}",
                                   status=result.status, finished_at=now, output=result.output)
        if result.note is not None:
            incidents.add_incident_note(session, request.incident_id, rows.SYSTEM, result.note, now)


def interrupt_stale(engine: Engine, policy: Policy, now: datetime) -> int:
    """Runs that outlived their timeout (the worker stopped while they ran) are recorded as
    failed and not run again; return how many."""
    def stale(session) -> list[ActionRequest]:
        return [r for r in actions.action_requests(session, RequestStatus.RUNNING)
                if r.started_at + _timeout(policy, r.action) + INTERRUPT_GRACE <= now]

    with read_session(engine) as session:
        if not stale(session):
            return 0
    with write_session(engine) as session:
        requests = stale(session)
        for request in requests:
            actions.update_action_request(
                session, request, rows.SYSTEM, now, "interrupted: no result within its timeout (the worker "
                "stopped while it ran?); recorded as failed, not run again", status=RequestStatus.FAILED, finished_at=now,
                output="interrupted: no result recorded")
    return len(requests)


def _timeout(policy: Policy, action_id: str) -> timedelta:
    action = policy.actions.action(action_id)
    return action.timeout if action else timedelta(0)


async def verify(engine: Engine, policy: Policy, claimed: Claimed, ctx: ProbeContext,
                 now: Callable[[], datetime] = utcnow) -> str:
    """Probe the incident's targets again; the incident moves on only if every probe passes.
    Return the verification: passed, failed or skipped."""
    to_state = VERIFIED_STATE.get(claimed.action.risk)
    targets = await asyncio.to_thread(incident_targets, engine, policy, claimed.incident_id)
    if to_state is None or not targets:
        why = "a read-only action changes nothing to verify" if to_state is None else "no probe target to re-run"
        await asyncio.to_thread(_record_verification, engine, claimed, [], Verification.SKIPPED, None, f"not verified: {why}",
                                now())
        return Verification.SKIPPED
    observations = [result.observation for result in await asyncio.gather(*(probe(t, ctx) for t in targets))]
    failing = [o for o in observations if not o.ok]
    if failing:
        message = "verification failed: " + "; ".join(f"{o.target}: {o.error}" for o in failing)
        await asyncio.to_thread(_record_verification, engine, claimed, observations, Verification.FAILED, None, message, now())
        return Verification.FAILED
    message = f"verified: {', '.join(o.target for o in observations)} passed again"
    await asyncio.to_thread(_record_verification, engine, claimed, observations, Verification.PASSED, to_state, message, now())
    return Verification.PASSED


def incident_targets(engine: Engine, policy: Policy, incident_id: int) -> list:
    """The enabled targets of the incident's findings; if none is a target, its service's."""
    detail = queries.incident_detail(engine, incident_id, observations=0)
    names = {finding.target for finding in detail.findings if finding.suppressed_by is None}
    enabled = [target for target in policy.targets if target.enabled]
    return [t for t in enabled if t.name in names] or [t for t in enabled if t.service == detail.service]


def _record_verification(engine: Engine, claimed: Claimed, observations: list, verdict: str, to_state: str | None,
                         message: str, now: datetime) -> None:
    with write_session(engine) as session:
        actions.action_verified(session, actions.action_request(session, claimed.request_id), observations, verdict,
                             to_state, message, now)
