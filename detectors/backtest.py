"""Backtests: a detector rule replayed over stored samples through the code the worker runs (its
rule kind's evaluator, then the pending/firing state machine with ``for``, ``keep_firing_for``
and flap protection) on a simulated clock that steps at the evaluation interval; and its firing
episodes scored against incidents: caught and missed, recall, precision, lead time."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from detectors.cycle import group_key, load_windows
from detectors.evaluators import Evaluation, evaluate
from detectors.state import INACTIVE, RuleStatus, Signal, step_rule
from ledger.samples import SampleStore
from policies.schema import format_duration

MAX_EVALUATIONS = 100_000  # a replay's cost is bounded: a longer range is cut to its latest part, with a warning
# An episode that starts up to this long before an incident opened caught it: the rule saw it first.
LEAD_HORIZON = timedelta(hours=1)


@dataclass(frozen=True)
class Episode:
    """A firing period of one group: from the evaluation that fired to the one that recovered
    (None while it still fires at the end of the range)."""

    group: dict[str, str]
    start: datetime
    end: datetime | None


@dataclass
class Replay:
    rule: str
    start: datetime
    end: datetime
    interval: timedelta
    evaluations: int = 0
    episodes: list[Episode] = field(default_factory=list)
    flaps: int = 0  # times a group started flapping
    services: set[str] = field(default_factory=set)  # of the groups it evaluated
    warnings: list[str] = field(default_factory=list)

    def fires_per_day(self) -> float:
        return len(self.episodes) / max((self.end - self.start) / timedelta(days=1), 1 / 1440)

    def time_in_alert_ratio(self) -> float:
        """The share of the range in which at least one group fired."""
        spans = sorted((e.start, e.end or self.end) for e in self.episodes)
        covered, reach = timedelta(0), self.start
        for start, end in spans:
            start = max(start, reach)
            if end > start:
                covered, reach = covered + (end - start), end
        return covered / (self.end - self.start) if self.end > self.start else 0.0


def replay(rule, store: SampleStore, start: datetime, end: datetime, noise,
           max_evaluations: int = MAX_EVALUATIONS) -> Replay:
    """``rule`` evaluated at ``start``, then every ``noise.evaluation_interval`` up to ``end``,
    from a state where nothing fired; each evaluation sees only the samples it would have seen
    live (its window up to that moment)."""
    interval = noise.evaluation_interval
    steps = int((end - start) / interval) + 1
    result = Replay(rule.name, start, end, interval)
    if steps > max_evaluations:
        start = end - interval * (max_evaluations - 1)
        steps = max_evaluations
        result.warnings.append(f"the range holds more evaluations than the {max_evaluations:,} a backtest makes at "
                               f"{format_duration(interval)}: cut to the latest part, from {start.isoformat()}")
        result.start = start
    window, past = load_windows(store, [rule], end, since=start)
    if window.size == 0:
        result.warnings.append("no samples of the rule's series in the range")
    statuses: dict[str, RuleStatus] = {}
    groups: dict[str, dict[str, str]] = {}
    firing_since: dict[str, datetime] = {}
    for step in range(steps):
        now = start + step * interval
        by_key = {group_key(e.group): e for e in evaluate(rule, window, now, past)}
        for key, status in statuses.items():  # groups that stopped reporting: no verdict, as live
            if key not in by_key and status.state != INACTIVE:
                by_key[key] = Evaluation(groups[key], None, False, {})
        for key, evaluation in by_key.items():
            before = statuses.get(key, RuleStatus())
            after, signal = step_rule(before, evaluation.active, now, for_=rule.for_,
                                      keep_firing_for=rule.keep_firing_for, flap_limit=noise.flap_limit,
                                      flap_window=noise.flap_window)
            statuses[key] = after
            groups.setdefault(key, evaluation.group)
            result.flaps += after.flapping and not before.flapping
            if signal is Signal.FIRING:
                firing_since[key] = now
            elif signal is Signal.RECOVERED:
                result.episodes.append(Episode(groups[key], firing_since.pop(key), now))
    result.episodes += [Episode(groups[key], since, None) for key, since in firing_since.items()]
    result.episodes.sort(key=lambda e: (e.start, group_key(e.group)))
    result.evaluations = steps
    result.services = {rule.service} if rule.service else {g["service"] for g in groups.values() if g.get("service")}
    return result


@dataclass(frozen=True)
class KnownIncident:
    id: int
    title: str
    opened_at: datetime
    resolved_at: datetime | None


@dataclass
class Score:
    caught: list[KnownIncident]
    missed: list[KnownIncident]
    useful_episodes: int  # episodes that overlap an incident
    lead_times: list[float]  # seconds, episode start minus incident open, of each caught incident

    def recall(self) -> float | None:
        total = len(self.caught) + len(self.missed)
        return len(self.caught) / total if total else None

    def precision(self, episodes: int) -> float | None:
        return self.useful_episodes / episodes if episodes else None

    def median_lead_time(self) -> float | None:
        return statistics.median(self.lead_times) if self.lead_times else None


Span = tuple[datetime, datetime | None]


def score(episodes: list[Episode], incidents: list[KnownIncident], end: datetime,
          marked_useful: list[Span] = ()) -> Score:
    """An incident is caught by the first episode that overlaps it (from LEAD_HORIZON before it
    opened until it resolved); an episode is useful when it overlaps an incident, or a firing
    the operator marked useful (``marked_useful``: live episodes of the rule)."""
    def overlaps(e: Episode, i: KnownIncident) -> bool:
        return e.start <= (i.resolved_at or end) and (e.end or end) >= i.opened_at - LEAD_HORIZON

    caught, missed, leads = [], [], []
    for incident in incidents:
        first = next((e for e in episodes if overlaps(e, incident)), None)
        if first is None:
            missed.append(incident)
        else:
            caught.append(incident)
            leads.append((first.start - incident.opened_at).total_seconds())
    useful = sum(any(overlaps(e, i) for i in incidents) or meets(e, marked_useful, end) for e in episodes)
    return Score(caught, missed, useful, leads)


def meets(episode: Episode, spans: list[Span], end: datetime) -> bool:
    """Whether ``episode`` overlaps one of ``spans`` (an open end runs to ``end``)."""
    return any(episode.start <= (until or end) and since <= (episode.end or end) for since, until in spans)


def compare_live(replayed: list[Episode], live: list[tuple[datetime, datetime | None]],
                 end: datetime) -> dict[str, int]:
    """How the replay matches what the rule really did (its findings' first seen and recovered
    times): episodes in both, only in the replay, only live."""
    def meet(a: tuple, b: tuple) -> bool:
        return a[0] <= (b[1] or end) and b[0] <= (a[1] or end)

    ours = [(e.start, e.end) for e in replayed]
    return {"both": sum(any(meet(o, t) for t in live) for o in ours),
            "replay_only": sum(not any(meet(o, t) for t in live) for o in ours),
            "live_only": sum(not any(meet(t, o) for o in ours) for t in live)}
