"""Detectors are pure functions: state in, state and signal out. Their state lives in the
ledger (``TargetState`` for probe thresholds, ``RuleState`` for detector rules), so a worker
restart changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from ledger.lifecycle import RulePhase


class Signal(Enum):
    NONE = "none"                  # healthy, or failing but not yet at the threshold
    FIRING = "firing"              # the failure threshold was just reached: open a finding
    STILL_FIRING = "still_firing"  # another failure while the finding is open
    RECOVERING = "recovering"      # first success while firing
    RECOVERED = "recovered"        # the success threshold was just reached: close the finding


@dataclass(frozen=True)
class ThresholdState:
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    firing: bool = False


def threshold(state: ThresholdState, ok: bool, failure_threshold: int, success_threshold: int) -> tuple[ThresholdState, Signal]:
    """Gatus-style thresholds: N failures in a row fire, M successes in a row recover."""
    if not ok:
        failures = state.consecutive_failures + 1
        if state.firing:
            return ThresholdState(failures, 0, True), Signal.STILL_FIRING
        if failures >= failure_threshold:
            return ThresholdState(failures, 0, True), Signal.FIRING
        return ThresholdState(failures, 0, False), Signal.NONE
    successes = state.consecutive_successes + 1
    if not state.firing:
        return ThresholdState(0, successes, False), Signal.NONE
    if successes >= success_threshold:
        return ThresholdState(0, successes, False), Signal.RECOVERED
    if successes == 1:
        return ThresholdState(0, successes, True), Signal.RECOVERING
    return ThresholdState(0, successes, True), Signal.NONE


INACTIVE, PENDING, FIRING = RulePhase


@dataclass(frozen=True)
class RuleStatus:
    """Where a rule stands for one group of series (kept in the ledger's ``rule_state``)."""

    state: str = INACTIVE
    active: bool = False  # the condition held at the last evaluation
    pending_since: datetime | None = None
    firing_since: datetime | None = None
    last_active_at: datetime | None = None
    flips: tuple[datetime, ...] = ()  # when the condition changed, within the flap window
    flapping: bool = False


def step_rule(status: RuleStatus, active: bool, now: datetime, *, for_: timedelta, keep_firing_for: timedelta,
              flap_limit: int, flap_window: timedelta) -> tuple[RuleStatus, Signal]:
    """Prometheus-style: the condition must hold for ``for_`` (pending until then) to fire, and
    a firing rule keeps firing ``keep_firing_for`` after it stops holding (recovering). A
    condition that changed more than ``flap_limit`` times in ``flap_window`` is flapping: the
    rule keeps firing, quietly, until it settles."""
    flips = tuple(t for t in status.flips if t > now - flap_window) + ((now,) if active != status.active else ())
    flapping = len(flips) > flap_limit
    base = dict(active=active, flips=flips, flapping=flapping)
    if active:
        if status.state == FIRING:
            return replace(status, **base, last_active_at=now), Signal.STILL_FIRING
        since = status.pending_since or now
        if now - since >= for_:
            return RuleStatus(FIRING, pending_since=since, firing_since=now, last_active_at=now, **base), Signal.FIRING
        return RuleStatus(PENDING, pending_since=since, last_active_at=now, **base), Signal.NONE
    if status.state != FIRING:
        return RuleStatus(INACTIVE, **base), Signal.NONE
    held = flapping or (status.last_active_at is not None and now - status.last_active_at < keep_firing_for)
    if held:
        first = status.active and not flapping
        return replace(status, **base), Signal.RECOVERING if first else Signal.NONE
    return RuleStatus(INACTIVE, **base), Signal.RECOVERED
