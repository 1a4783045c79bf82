import pytest

from probes.detectors import Signal, ThresholdState, threshold


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
