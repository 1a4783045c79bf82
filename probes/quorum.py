"""A target probed from several locations: each location keeps its own threshold detector
(N failures in a row make it failing, M successes in a row well again); the target's finding
follows how many are failing. A quorum of failing locations (``quorum``, by default a majority)
opens the finding at the target's severity; fewer open a lower-severity one ("unreachable from
office", ``partial_severity``), which the full finding replaces if more locations fail. The
finding closes when no location is failing. Both fold into the target's one incident, whose
evidence holds each failing location's latest result."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from detectors.state import Signal, ThresholdState, threshold
from ledger.repo import fleet, incidents, observations
from ledger.tables import Finding, Observation, TargetState

PARTIAL = ":partial"  # the rule of a finding from fewer than quorum locations ends with it


def record(session: Session, target, state: TargetState, observation: Observation, at: datetime) -> Signal:
    """Count ``observation`` (from ``observation.location``) and move the target's finding."""
    here = fleet.location_state(session, target.name, observation.location)
    after, _ = threshold(ThresholdState(here.consecutive_failures, here.consecutive_successes, here.failing),
                         observation.ok, target.failure_threshold, target.success_threshold)
    here.consecutive_failures, here.consecutive_successes, here.failing = (
        after.consecutive_failures, after.consecutive_successes, after.firing)
    here.last_ok, here.last_error, here.last_observed_at = observation.ok, observation.error, observation.started_at
    states = fleet.location_states(session, target.name)
    failing = [name for name in target.locations if name in states and states[name].failing]
    wanted = None if not failing else "full" if len(failing) >= target.location_quorum else "partial"
    finding = None if state.active_finding_id is None else session.get(Finding, state.active_finding_id)
    current = None if finding is None else "partial" if finding.rule.endswith(PARTIAL) else "full"

    signal = Signal.NONE
    if wanted is None and current is not None:
        incidents.finding_recovered(session, finding.id, observation, at, "no location is failing",
                                    f"well again from every location ({', '.join(target.locations)})")
        finding, signal = None, Signal.RECOVERED
    elif wanted is not None and (current is None or (wanted, current) == ("full", "partial")):
        opened = incidents.open_finding(session, _spec(target, wanted, failing, states),
                                        _latest_failures(session, target.name, failing), at)
        if finding is not None:  # the full finding replaces the partial one, in the same incident
            incidents.close_finding(session, finding, at, f"now failing from {len(failing)} of "
                                    f"{len(target.locations)} locations", "replaced by the full finding")
            incidents.retitle(session, opened.incident_id, finding.summary, opened.summary)
        finding, signal = opened, Signal.FIRING
    elif current is not None and not observation.ok:
        incidents.finding_failed_again(session, finding.id, observation, at)
        signal = Signal.STILL_FIRING
    observations.save_target_state(session, state, failures=here.consecutive_failures,
                                   successes=here.consecutive_successes, observation=observation,
                                   active_finding_id=None if finding is None else finding.id)
    return signal


def _spec(target, wanted: str, failing: list[str], states: dict) -> incidents.FindingSpec:
    reasons = "; ".join(f"{name}: {states[name].last_error or 'conditions not met'}" for name in failing)
    well = [name for name in target.locations if name not in failing]
    if wanted == "full":
        summary = f"{target.name} failing from {len(failing)} of {len(target.locations)} locations ({reasons})"
    else:
        summary = f"{target.name} unreachable from {', '.join(failing)} ({reasons}); well from {', '.join(well)}"
    return incidents.FindingSpec(
        rule=f"probe:{target.kind}" + ("" if wanted == "full" else PARTIAL),
        target=target.name, service=target.service,
        severity=target.severity if wanted == "full" else target.lower_severity,
        summary=summary, correlation_key=f"{target.service}/{target.name}",
        labels={"kind": target.kind, "category": "availability", "locations": ",".join(failing)},
        parent=target.parent,
    )


def _latest_failures(session: Session, target: str, locations: list[str]) -> list[Observation]:
    """The latest failed run from each of ``locations``: the finding's evidence."""
    latest = []
    for location in locations:
        row = session.exec(select(Observation).where(Observation.target == target, Observation.location == location,
                                                     col(Observation.ok).is_(False))
                           .order_by(col(Observation.started_at).desc(), col(Observation.id).desc()).limit(1)).first()
        if row is not None:
            latest.append(row)
    return latest
