"""Who acts from the command line: the OS user, with the role the policy gives them (app.access)."""

from __future__ import annotations

from app.access import Identity, cli_identity
from app.settings import Paths
from policies.loader import load_policy


def operator(paths: Paths) -> Identity:
    return cli_identity(paths.ledger(), load_policy(paths.policy_dir))
