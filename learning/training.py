"""Training mode (``learning.mode: training_auto_create``): learned rules put in force without the
operator, in steps that cannot run away, each kept as a revision and logged.

1. **Activate in shadow** a pending suggestion that beat its rule on its backtest (every kept
   suggestion did), stays within the noise budget and rests on at least ``min_incidents``
   incidents: it is evaluated and its firings recorded, but it opens no incident.
2. **Promote** it after ``shadow_for`` if its firings in shadow stayed within its backtest's
   rate times ``noise_margin`` (and the budget): it goes live. Otherwise it is removed.
3. **Roll back** a live rule training put in force whose firings since it went live exceed its
   backtest's rate times ``noise_margin``: it is removed, with a note on the incidents it opened.

Nothing in the operator's hand-written files changes, and every step is a revision the operator
can see and undo (``workbench rules revisions``, ``workbench rules rollback``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from learning.suggestions import accept, write_learned
from ledger import queries
from ledger.db import read_session, write_session
from ledger.lifecycle import SuggestionStatus
from ledger.repo import incidents
from ledger.repo import rules as rule_repo
from ledger.repo.rows import SYSTEM

TRAINING = f"{SYSTEM} (training)"
log = logging.getLogger("workbench.learning")


def train(engine: Engine, policy, policy_dir: Path, now: datetime) -> list[str]:
    """One step of training mode; what it did, one line each (nothing unless the mode is on)."""
    learning = policy.rules.learning
    if learning.mode != "training_auto_create":
        return []
    done = []
    with read_session(engine) as session:
        pending = rule_repo.suggestions(session, [SuggestionStatus.PENDING])
        latest = {name: rule_repo.revisions(session, name)[-1] for name in policy.learned
                  if rule_repo.revisions(session, name)}
    for suggestion in pending:
        suggested = suggestion.backtest.get("suggested", {})
        rests_on = len(suggestion.provenance.get("incidents", []))
        if rests_on >= learning.min_incidents and suggested.get("fires_per_day", 0) <= learning.noise_budget:
            accept(engine, policy_dir, suggestion.id, TRAINING,
                   f"training: beats its rule on its backtest, {suggested['fires_per_day']:g} episodes a day within the "
                   f"budget of {learning.noise_budget:g}, learned from {rests_on} incidents; in shadow first", now,
                   shadow=True)
            done.append(f"{suggestion.name}: activated in shadow")
    rules = {r.name: r for r in policy.rules.resolved}
    for name, revision in latest.items():
        if revision.actor != TRAINING or revision.rule is None or name not in rules:
            continue
        since = revision.at
        expected = revision.backtest.get("fires_per_day", 0)
        episodes, rate = _live(engine, name, since, now)
        too_noisy = episodes > 1 and rate > expected * learning.noise_margin  # one firing proves nothing
        if rules[name].shadow and now - since >= learning.shadow_for:
            if not too_noisy:
                _revise(engine, policy_dir, name, {k: v for k, v in revision.rule.items() if k != "shadow"},
                        revision, now, f"training: promoted after {_days(now - since)} in shadow, {rate:.2f} "
                                       f"episodes a day against {expected:g} in its backtest")
                done.append(f"{name}: promoted to live")
            else:
                _revise(engine, policy_dir, name, None, revision, now, f"training: removed after its shadow run, "
                        f"{rate:.2f} episodes a day against {expected:g} in its backtest")
                done.append(f"{name}: removed after its shadow run")
        elif not rules[name].shadow and now - since >= learning.shadow_for and too_noisy:
            reason = (f"training: rolled back, {rate:.2f} episodes a day live since {since:%Y-%m-%d %H:%M} UTC "
                      f"against {expected:g} in its backtest (margin x{learning.noise_margin:g})")
            _revise(engine, policy_dir, name, None, revision, now, reason)
            _note_incidents(engine, name, since, now, reason)
            done.append(f"{name}: rolled back")
    for line in done:
        log.info("learned rule %s", line)
    return done


def _live(engine: Engine, name: str, since: datetime, now: datetime) -> tuple[int, float]:
    """The rule's firings (its findings, shadow ones included) since ``since``, and their rate a day."""
    episodes = len(queries.rule_history(engine, f"rule:{name}", since, now).episodes)
    return episodes, episodes / max((now - since) / timedelta(days=1), 1 / 1440)


def _revise(engine: Engine, policy_dir: Path, name: str, rule: dict | None, previous, now: datetime,
            reason: str) -> None:
    with write_session(engine) as session:
        rule_repo.add_revision(session, name, rule, previous.suggestion_id, TRAINING, now, reason, previous.backtest)
        write_learned(policy_dir, name, rule)


def _note_incidents(engine: Engine, name: str, since: datetime, now: datetime, reason: str) -> None:
    opened = queries.rule_history(engine, f"rule:{name}", since, now).incident_ids
    with write_session(engine) as session:
        for incident_id in sorted(opened):
            incidents.add_incident_note(session, incident_id, TRAINING, f"learned rule {name}: {reason}", now)


def _days(span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"
