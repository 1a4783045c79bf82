"""What the operator does to an incident, shared by the web app and the CLI."""

from __future__ import annotations

import getpass

from sqlalchemy import Engine

from ledger import repo
from ledger.db import utcnow, write_session
from ledger.errors import TransitionRefused
from ledger.lifecycle import OPERATOR_ACTIONS, TRANSITIONS


def operator_name() -> str:
    """The local OS user: who the ledger says did it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def act(engine: Engine, incident_id: int, action: str, reason: str | None = None, actor: str | None = None) -> str:
    """Apply one operator action; return the incident's new state."""
    if action not in OPERATOR_ACTIONS:
        raise TransitionRefused(f"unknown action {action!r}; actions are {', '.join(OPERATOR_ACTIONS)}")
    with write_session(engine) as session:
        incident = repo.transition(session, incident_id, OPERATOR_ACTIONS[action], actor or operator_name(),
                                   reason, utcnow())
        return incident.state


def available_actions(state: str) -> list[str]:
    """Operator actions the lifecycle allows from ``state``, in a stable order."""
    return [action for action, target in OPERATOR_ACTIONS.items() if target in TRANSITIONS[state]]
