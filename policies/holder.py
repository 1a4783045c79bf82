"""Keeps the last good policy in force while the operator edits the files, with the values of
the secrets it references (``policy_secrets``), for the ledger to mask."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from policies.errors import PolicyError
from policies.loader import Policy, load_policy
from policies.secrets import policy_secrets

log = logging.getLogger("workbench.policy")


class PolicyHolder:
    def __init__(self, directory: Path | str, now: Callable[[], datetime]):
        self.directory = Path(directory)
        self.now = now
        self.policy: Policy = load_policy(self.directory)  # an invalid policy at start is fatal
        self.secrets = frozenset(policy_secrets(self.policy))
        self.loaded_at = now()
        self.error: PolicyError | None = None
        self._digest = self._fingerprint()

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when a new policy took effect."""
        digest = self._fingerprint()
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            policy = load_policy(self.directory)
        except PolicyError as exc:
            self.error = exc
            for problem in exc.problems:
                log.error("policy rejected, the last good policy stays in force: %s", problem)
            return False
        self.policy, self.error, self.loaded_at = policy, None, self.now()
        self.secrets = frozenset(policy_secrets(policy))
        log.info("policy reloaded from %s: %d targets", self.directory, len(policy.targets))
        return True

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.directory.glob("*.y*ml")):
            digest.update(path.name.encode())
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
        return digest.hexdigest()
