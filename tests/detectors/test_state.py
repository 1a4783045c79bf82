from datetime import UTC, datetime, timedelta

import pytest

from detectors.state import RuleStatus, Signal, ThresholdState, step_rule, threshold


def run(outcomes: str, failures: int = 3, successes: int = 2) -> list[Signal]:
    """Feed a string of outcomes ('F' fail, 'S' success) through the detector."""
    state, signals = ThresholdState(), []
    for outcome in outcomes:
        state, signal = threshold(state, outcome == "S", failures, successes)
        signals.append(signal)
    return signals


N, F, SF, RG, RD = Signal.NONE, Signal.FIRING, Signal.STILL_FIRING, Signal.RECOVERING, Signal.RECOVERED


@pytest.mark.parametrize("outcomes,expected", [
    ("SSS", [N, N, N]),                              # healthy
    ("FFS", [N, N, N]),                              # pending, never reaches the threshold
    ("FFF", [N, N, F]),                              # fires on the third failure in a row
    ("FFSFF", [N, N, N, N, N]),                      # a success in between resets the count
    ("FFFF", [N, N, F, SF]),                         # keeps firing
    ("FFFSS", [N, N, F, RG, RD]),                    # recovers after two successes
    ("FFFSFS", [N, N, F, RG, SF, RG]),               # relapse while recovering
    ("FFFSSFFF", [N, N, F, RG, RD, N, N, F]),        # fires again only after a fresh streak
])
def test_threshold_table(outcomes, expected):
    assert run(outcomes) == expected


def test_success_threshold_of_one_recovers_at_once():
    assert run("FS", failures=1, successes=1) == [F, RD]


def test_state_round_trips_through_plain_fields():
    """The ledger stores the state as three plain fields; a restart rebuilds it from them."""
    state, _ = threshold(ThresholdState(), False, 3, 2)
    rebuilt = ThresholdState(state.consecutive_failures, state.consecutive_successes, state.firing)
    assert threshold(rebuilt, False, 3, 2) == threshold(state, False, 3, 2)


# --- detector rules: pending, firing, recovering, flapping ------------------------------

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=15)


def run_rule(conditions: str, *, for_=timedelta(0), keep=timedelta(0), flap_limit=4,
             flap_window=timedelta(minutes=30)) -> tuple[list[Signal], list[str], RuleStatus]:
    """Feed a string of evaluations ('1' the condition holds, '0' it does not), one per 15 s."""
    status, signals, states = RuleStatus(), [], []
    for i, held in enumerate(conditions):
        status, signal = step_rule(status, held == "1", T0 + i * STEP, for_=for_, keep_firing_for=keep,
                                   flap_limit=flap_limit, flap_window=flap_window)
        signals.append(signal)
        states.append(status.state)
    return signals, states, status


@pytest.mark.parametrize("conditions,options,signals,states", [
    ("000", {}, [N, N, N], ["inactive"] * 3),
    ("11", {}, [F, SF], ["firing", "firing"]),                                        # no for: fires at once
    ("1110", {"for_": timedelta(seconds=30)}, [N, N, F, RD],                          # pending for 30 s
     ["pending", "pending", "firing", "inactive"]),
    ("1101", {"for_": timedelta(seconds=30)}, [N, N, N, N],                           # a gap resets pending
     ["pending", "pending", "inactive", "pending"]),
    ("10001", {"keep": timedelta(seconds=40)}, [F, RG, N, RD, F],                     # keep_firing_for 40 s
     ["firing", "firing", "firing", "inactive", "firing"]),
    ("1010", {"keep": timedelta(seconds=40)}, [F, RG, SF, RG],                        # relapse while held
     ["firing"] * 4),
])
def test_rule_table(conditions, options, signals, states):
    got_signals, got_states, _ = run_rule(conditions, **options)
    assert (got_signals, got_states) == (signals, states)


def test_a_flapping_rule_is_held_open_quietly_until_it_settles():
    signals, states, status = run_rule("101010" + "0" * 8, flap_limit=4, flap_window=timedelta(minutes=2))
    assert signals[:5] == [F, RD, F, RD, F]          # four changes in 2 min: not yet flapping
    assert signals[5] == N and states[5] == "firing"  # the sixth change: flapping, held open quietly
    settled = signals.index(RD, 6)
    assert signals[6:settled] == [N] * (settled - 6) and states[settled - 1] == "firing"
    assert states[settled:] == ["inactive"] * (len(states) - settled)  # once the changes age out of the window
    assert status.flapping is False


def test_flapping_is_marked_in_the_status():
    _, _, status = run_rule("10101", flap_limit=3, flap_window=timedelta(minutes=10))
    assert status.flapping and status.state == "firing" and len(status.flips) == 5


def test_rule_status_survives_a_restart_from_its_fields():
    """The worker keeps the status in rule_state; a new process rebuilds it and goes on."""
    _, _, status = run_rule("11", for_=timedelta(minutes=1))
    rebuilt = RuleStatus(**{f: getattr(status, f) for f in RuleStatus.__dataclass_fields__})
    later = T0 + timedelta(minutes=2)
    kwargs = dict(for_=timedelta(minutes=1), keep_firing_for=timedelta(0), flap_limit=4,
                  flap_window=timedelta(minutes=30))
    assert step_rule(rebuilt, True, later, **kwargs) == step_rule(status, True, later, **kwargs)
    assert step_rule(rebuilt, True, later, **kwargs)[1] is Signal.FIRING
