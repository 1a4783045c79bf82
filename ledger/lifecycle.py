"""The incident lifecycle: states and the one table of allowed transitions."""

from __future__ import annotations

from ledger.errors import TransitionRefused

OBSERVED, TRIAGED, CONTAINED, RECOVERING, RESOLVED, SUPPRESSED, ESCALATED = (
    "observed", "triaged", "contained", "recovering", "resolved", "suppressed", "escalated",
)
STATES = (OBSERVED, TRIAGED, CONTAINED, RECOVERING, RESOLVED, SUPPRESSED, ESCALATED)
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
        raise TransitionRefused(f"unknown state {target!r}; states are {', '.join(STATES)}")
    if by_operator and target not in OPERATOR_ACTIONS.values():
        raise TransitionRefused(f"{target!r} is entered automatically, not by the operator")
    if target not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none: it is final"
        raise TransitionRefused(f"cannot go from {current} to {target} (from {current}: {allowed})")
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise TransitionRefused(f"going to {target} needs a reason")
