"""Detectors are pure functions: state in, state and signal out. Their state lives in the
ledger (``TargetState``), so a worker restart changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
