"""The incident lifecycle table: what may follow what, who may ask for it, and why."""

from __future__ import annotations

import itertools

import pytest

from ledger.errors import TransitionRefused
from ledger.lifecycle import (
    OPEN_STATES,
    OPERATOR_ACTIONS,
    RECOVERING,
    RESOLVED,
    STATES,
    SUPPRESSED,
    TRANSITIONS,
    check_transition,
)

PAIRS = list(itertools.product(STATES, STATES))
ALLOWED = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]
OPERATOR_ALLOWED = [(a, b) for a, b in ALLOWED if b in OPERATOR_ACTIONS.values()]


def test_the_table_covers_every_state_and_names_only_states():
    assert set(TRANSITIONS) == set(STATES)
    for current, targets in TRANSITIONS.items():
        assert targets <= set(STATES), current
        assert current not in targets, f"{current} lists itself"


@pytest.mark.parametrize("current", OPEN_STATES)
def test_every_open_state_can_be_resolved(current):
    assert RESOLVED in TRANSITIONS[current]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition_passes_for_the_signal(current, target):
    check_transition(current, target, by_operator=False, reason="because")


@pytest.mark.parametrize(("current", "target"), OPERATOR_ALLOWED)
def test_every_allowed_operator_transition_passes(current, target):
    check_transition(current, target, by_operator=True, reason="because")


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_other_transition_is_refused_with_a_readable_message(current, target):
    with pytest.raises(TransitionRefused) as refused:
        check_transition(current, target, by_operator=False, reason="because")
    message = str(refused.value)
    assert f"cannot go from {current} to {target}" in message
    allowed = sorted(TRANSITIONS[current]) or ["none: it is final"]
    assert message.endswith(f"(from {current}: {', '.join(allowed)})")


@pytest.mark.parametrize("current", [s for s in STATES if RECOVERING in TRANSITIONS[s]])
def test_the_operator_cannot_enter_recovering(current):
    check_transition(current, RECOVERING, by_operator=False, reason=None)
    with pytest.raises(TransitionRefused, match="'recovering' is entered automatically, not by the operator"):
        check_transition(current, RECOVERING, by_operator=True, reason="it looks better")


@pytest.mark.parametrize("target", [SUPPRESSED, RESOLVED])
@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_suppress_and_resolve_need_a_reason(target, reason):
    with pytest.raises(TransitionRefused, match=f"going to {target} needs a reason"):
        check_transition("triaged", target, by_operator=True, reason=reason)
    check_transition("triaged", target, by_operator=True, reason="known maintenance window")


@pytest.mark.parametrize("target", STATES)
@pytest.mark.parametrize("by_operator", [False, True])
def test_resolved_is_final(target, by_operator):
    with pytest.raises(TransitionRefused):
        check_transition(RESOLVED, target, by_operator=by_operator, reason="reopen it")


def test_a_final_state_says_so():
    with pytest.raises(TransitionRefused, match=r"\(from resolved: none: it is final\)"):
        check_transition(RESOLVED, "triaged", by_operator=True, reason="reopen it")


def test_an_unknown_state_is_refused_by_name():
    with pytest.raises(TransitionRefused, match="unknown state 'closed'; states are observed, triaged"):
        check_transition("observed", "closed", by_operator=True, reason="done")
