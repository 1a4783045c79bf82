"""One probe run of one target: probe, record, detect, fold. The scheduler and
``workbench probe run --once`` both go through here."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Engine
from sqlmodel import col, select

from detectors.state import Signal, ThresholdState, threshold
from ledger.db import retry_conflict, take_turn, utcnow, write_session
from ledger.repo import alerts, incidents, observations
from ledger.samples import Sample, SampleSink
from ledger.tables import Observation
from probes import quorum
from probes.context import ProbeContext, ProbeResult, elapsed_ms, failed
from probes.kinds.registry import PROBES

# A pulled alert must be missing this long before it counts as resolved: an Alertmanager
# restart empties its list until Prometheus sends the alert again (resend delay 1m by default).
PULL_RESOLVE_GRACE = timedelta(seconds=90)


@dataclass(frozen=True)
class Outcome:
    observation: Observation
    signal: Signal
    write_seconds: float
    alerts: dict[str, int]
    duplicate: bool = False  # the run was recorded already (a bucket taken up again): nothing was written


@dataclass(frozen=True)
class Run:
    """Which run of the fleet's schedule a probe is: from which location, for which slot of its interval."""

    location: str
    slot: int  # the slot's start, in seconds since the epoch

    def key(self, target) -> str:
        """One run per slot of a target; per slot and location for a target probed from several."""
        return f"{self.slot}@{self.location}" if target.locations else str(self.slot)


async def probe(target, ctx: ProbeContext) -> ProbeResult:
    """Run the target's probe; whatever goes wrong becomes a failed observation, never an exception."""
    started_at = ctx.now()
    t0 = time.perf_counter()
    try:
        return await PROBES[target.kind](target, ctx)
    except Exception as exc:  # a probe bug must not take the worker down
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return failed(target, started_at, elapsed_ms(t0),
                      f"probe error {type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})")


def record(engine: Engine, target, result: ProbeResult, now: Callable[[], datetime] = utcnow,
           run: Run | None = None) -> Outcome:
    """Store the observation, act on what the threshold detector says (or, for a target probed
    from several locations, the quorum of their detectors) and fold in any alerts, in one
    transaction; a fleet ``run`` recorded already is not recorded again. Timeline entries carry
    the time of recording, so they stay in causal order with the operator's own entries;
    evidence carries the time of the observation."""
    return retry_conflict(lambda: _record(engine, target, result, now, run))


def _record(engine: Engine, target, result: ProbeResult, now: Callable[[], datetime], run: Run | None) -> Outcome:
    t0 = time.perf_counter()
    observation = result.observation
    alert_outcomes: dict[str, int] = {}
    with write_session(engine, turns=False) as session:
        at = now()
        state = observations.target_state(session, target.name)  # the target's records take turns from here
        if run is not None:
            observation.location, observation.slot_key = run.location, run.key(target)
            if observations.recorded(session, target.name, observation.slot_key):
                return Outcome(observation, Signal.NONE, time.perf_counter() - t0, {}, duplicate=True)
        observations.add_observation(session, observation)
        if run is not None and target.locations:
            signal = quorum.record(session, target, state, observation, at)
        else:
            signal = _threshold(session, target, state, observation, at)
        if result.alerts or target.kind == "alertmanager":
            take_turn(session)
        for event in result.alerts:
            outcome = alerts.record_alert(session, event, at, origin=target.name)
            alert_outcomes[outcome] = alert_outcomes.get(outcome, 0) + 1
        if target.kind == "alertmanager" and "ALERT_COUNT" in observation.values:  # the whole list was read
            listed = {(event.fingerprint, event.starts_at) for event in result.alerts}
            resolved = alerts.resolve_unlisted_alerts(session, target.name, listed, at, PULL_RESOLVE_GRACE)
            alert_outcomes["resolved"] = alert_outcomes.get("resolved", 0) + resolved
    return Outcome(observation, signal, time.perf_counter() - t0, alert_outcomes)


def _threshold(session, target, state, observation: Observation, at: datetime) -> Signal:
    """One detector for the target: N failures in a row open its finding, M successes close it."""
    before = ThresholdState(state.consecutive_failures, state.consecutive_successes,
                            state.active_finding_id is not None)
    after, signal = threshold(before, observation.ok, target.failure_threshold, target.success_threshold)
    active = state.active_finding_id
    if signal is Signal.FIRING:
        streak = _failure_streak(session, target.name, target.failure_threshold)
        active = incidents.open_finding(session, _finding_spec(target, observation), streak, at).id
    elif signal is Signal.STILL_FIRING:
        incidents.finding_failed_again(session, active, observation, at)
    elif signal is Signal.RECOVERING:
        incidents.finding_recovering(session, active, observation, at, f"signal recovered; resolves after "
                                     f"{target.success_threshold} successes in a row")
    elif signal is Signal.RECOVERED:
        successes = after.consecutive_successes
        incidents.finding_recovered(session, active, observation, at, f"{successes} successes in a row",
                                    f"success threshold held ({successes} in a row)")
        active = None
    observations.save_target_state(session, state, failures=after.consecutive_failures,
                                   successes=after.consecutive_successes, observation=observation,
                                   active_finding_id=active)
    return signal


async def run_target(engine: Engine, target, ctx: ProbeContext, store: SampleSink | None = None,
                     run: Run | None = None) -> Outcome:
    result = await probe(target, ctx)
    if store is not None:
        store.append(probe_samples(target, result, run.location if run and target.locations else None))
    return await asyncio.get_running_loop().run_in_executor(ctx.recorder, partial(record, engine, target, result,
                                                                              run=run))


def probe_samples(target, result: ProbeResult, location: str | None = None) -> list[Sample]:
    """Every run's own series (success, duration, each measured value) plus what the probe
    collected; labelled with the location it ran from, for a target probed from several."""
    obs = result.observation
    labels = {"service": target.service, "target": target.name, "kind": target.kind}
    if location is not None:
        labels["location"] = location
    samples = [Sample("probe_success", labels, 1.0 if obs.ok else 0.0, obs.started_at),
               Sample("probe_duration_seconds", labels, obs.duration_ms / 1000, obs.started_at)]
    samples += [Sample("probe_value", {**labels, "value": name}, float(value), obs.started_at)
                for name, value in obs.values.items() if isinstance(value, (int, float))]
    return samples + result.samples


def _finding_spec(target, observation: Observation) -> incidents.FindingSpec:
    return incidents.FindingSpec(
        rule=f"probe:{target.kind}",
        target=target.name,
        service=target.service,
        severity=target.severity,
        summary=f"{target.name} failing: {observation.error or 'conditions not met'}",
        correlation_key=f"{target.service}/{target.name}",
        labels={"kind": target.kind, "category": "availability"},
        parent=target.parent,
    )


def _failure_streak(session, target_name: str, limit: int) -> list[Observation]:
    rows = session.exec(
        select(Observation).where(Observation.target == target_name)
        .order_by(col(Observation.started_at).desc(), col(Observation.id).desc()).limit(limit)
    ).all()
    return [row for row in reversed(rows) if not row.ok]
