"""Every state machine's values, and the one table of allowed incident transitions.

The incident lifecycle is enforced here (``check_transition``); the other state machines are
stepped by their own modules (detectors.state for rule groups, remediation.flow and
remediation.executor for action requests, hypotheses.refine for refinement runs) with these
values. Each is a StrEnum, so it is stored and compared as its plain string."""

from __future__ import annotations

from enum import StrEnum

from ledger.errors import TransitionRefused


class IncidentState(StrEnum):
    OBSERVED = "observed"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    RECOVERING = "recovering"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"
    ESCALATED = "escalated"


class RequestStatus(StrEnum):
    """An action request: proposed (pending, or refused by the gate, or approved at once), decided,
    run, finished; withdrawn when its incident resolved before it ran."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    REFUSED = "refused"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class Verification(StrEnum):
    """What re-probing after an action found."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    """A model's refinement of an incident's hypotheses; failed means the draft stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SuggestionStatus(StrEnum):
    """A learned rule suggestion: waiting for the operator, accepted (written to the learned
    rules file), rejected with a reason, or superseded by a newer suggestion for the same rule."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class Verdict(StrEnum):
    """The operator's word on a finding: it was worth the alert, it was noise, or it was expected
    (planned work, a known cause) and needed no alert."""

    USEFUL = "useful"
    NOISE = "noise"
    EXPECTED = "expected"


class DeliveryStatus(StrEnum):
    """A notification in the outbox: waiting (or between attempts), delivered, failed for good, or
    failed for good and taken over by the next channel of its route."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    FALLBACK = "fallback"


class RulePhase(StrEnum):
    """Where a detector rule stands for one group of series (Prometheus's alert states)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


OBSERVED, TRIAGED, CONTAINED, RECOVERING, RESOLVED, SUPPRESSED, ESCALATED = IncidentState
STATES = tuple(IncidentState)
OPEN_STATES = tuple(s for s in STATES if s != RESOLVED)

TRANSITIONS: dict[str, frozenset[str]] = {
    OBSERVED: frozenset({TRIAGED, CONTAINED, SUPPRESSED, ESCALATED, RECOVERING, RESOLVED}),
    TRIAGED: frozenset({CONTAINED, SUPPRESSED, ESCALATED, RECOVERING, RESOLVED}),
    ESCALATED: frozenset({TRIAGED, CONTAINED, SUPPRESSED, RECOVERING, RESOLVED}),
    CONTAINED: frozenset({TRIAGED, ESCALATED, RECOVERING, RESOLVED}),
    # recovering goes back where it came from when the signal fails again
    RECOVERING: frozenset({OBSERVED, TRIAGED, CONTAINED, ESCALATED, RESOLVED}),
    SUPPRESSED: frozenset({TRIAGED, RESOLVED}),
    RESOLVED: frozenset(),
}

# What the operator may ask for; "recovering" is entered by the signal alone.
OPERATOR_ACTIONS: dict[str, str] = {
    "triage": TRIAGED,
    "contain": CONTAINED,
    "escalate": ESCALATED,
    "suppress": SUPPRESSED,
    "resolve": RESOLVED,
}
REASON_REQUIRED = frozenset({SUPPRESSED, RESOLVED})


def check_transition(current: str, target: str, *, by_operator: bool, reason: str | None) -> None:
    """Raise TransitionRefused with a readable message unless ``current -> target`` is allowed."""
    if target not in STATES:
        raise TransitionRefused(f"unknown state {str(target)!r}; states are {', '.join(STATES)}")
    if by_operator and target not in OPERATOR_ACTIONS.values():
        raise TransitionRefused(f"{str(target)!r} is entered automatically, not by the operator")
    if target not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none: it is final"
        raise TransitionRefused(f"cannot go from {current} to {target} (from {current}: {allowed})")
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise TransitionRefused(f"going to {target} needs a reason")
