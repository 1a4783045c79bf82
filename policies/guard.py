"""A valid policy that would silently stop what the workbench does is refused as suspicious until
the operator confirms it: one with no targets at all (a deleted or emptied targets.yaml probes
nothing), and, against the policy in force, one where a file now holds nothing that held
something (every rule, action, provider ... of it would stop). ``allow_empty: true`` at the top
of a file confirms it may hold nothing; ``policy check --allow-empty`` checks as if every file
said so. A file cannot confirm its own deletion: leave it with ``allow_empty: true`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from policies.errors import Problem
from policies.loader import ALLOW_EMPTY, Policy

HOLDS: dict[str, tuple[str, Callable[[Policy], int]]] = {  # file -> (what it holds, how many a policy has)
    "targets.yaml": ("target", lambda policy: len(policy.targets)),
    "rules.yaml": ("rule", lambda policy: len(policy.rules.rules)),
    "settings.yaml": ("setting", lambda policy: len(policy.settings.model_fields_set)),
    "hypotheses.yaml": ("hypothesis rule", lambda policy: len(policy.hypotheses.rules)),
    "routing.yaml": ("provider", lambda policy: len(policy.routing.providers)),
    "actions.yaml": ("action", lambda policy: len(policy.actions.actions)),
    "channels.yaml": ("channel", lambda policy: len(policy.channels.channels)),
}


def suspicious(directory: Path, policy: Policy, in_force: Policy | None = None, *,
               confirmed: bool = False) -> list[Problem]:
    """Problems of ``policy`` for each file that holds nothing unconfirmed: targets.yaml always, the
    others where ``in_force`` has something in them."""
    problems = []
    for name, (what, count) in HOLDS.items():
        if confirmed or name in policy.allow_empty or count(policy):
            continue
        if in_force is not None and count(in_force):
            problems.append(Problem(str(directory / name), "", _lost(name, what, count(in_force), policy)))
        elif name == "targets.yaml":
            problems.append(Problem(str(directory / name), "", _no_targets(name, policy)))
    return problems


def _lost(name: str, what: str, had: int, policy: Policy) -> str:
    now = "is missing" if name not in policy.files else f"holds no {what}s"
    return (f"{now}, but the policy in force has {had} {what}{'s' if had != 1 else ''} from it: refused as "
            f"suspicious, the last good policy stays in force; if that is meant, leave {name} with {ALLOW_EMPTY}: "
            "true at the top")


def _no_targets(name: str, policy: Policy) -> str:
    now = "is missing" if name not in policy.files else "has no targets"
    return (f"{now}, so nothing would be probed: refused as suspicious; if that is meant, leave {name} with "
            f"{ALLOW_EMPTY}: true at the top")
