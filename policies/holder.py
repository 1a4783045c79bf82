"""Keeps the last good policy in force while the operator edits the files, tells which policy
is in force and what became of the files on disk, and holds the values of the secrets the policy
in force references (``policy_secrets``), for the ledger to mask."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from policies.errors import PolicyError
from policies.guard import suspicious
from policies.loader import Policy, files_digest, load_policy
from policies.secrets import policy_secrets

log = logging.getLogger("workbench.policy")


@dataclass(frozen=True)
class _State:
    """One consistent view, replaced whole: readers on other threads never see half a reload."""

    policy: Policy  # in force
    loaded_at: datetime
    seen: str  # digest of the files on disk as last looked at
    seen_at: datetime  # when that version of the files was first seen
    error: PolicyError | None  # why that version was rejected, if it was
    secrets: frozenset[str]  # values of the secrets the policy in force references


class PolicyHolder:
    def __init__(self, directory: Path | str, now: Callable[[], datetime]):
        self.directory = Path(directory)
        self.now = now
        self._reloading = threading.Lock()
        policy = load_policy(self.directory)  # an invalid or suspicious policy at start is fatal
        if problems := suspicious(self.directory, policy):
            raise PolicyError(problems)
        at = now()
        self._state = _State(policy, at, policy.digest, at, None, frozenset(policy_secrets(policy)))

    @property
    def policy(self) -> Policy:
        return self._state.policy

    @property
    def loaded_at(self) -> datetime:
        return self._state.loaded_at

    @property
    def error(self) -> PolicyError | None:
        return self._state.error

    @property
    def secrets(self) -> frozenset[str]:
        return self._state.secrets

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when a new policy took effect. One reload runs
        at a time; a caller that comes while one runs waits for it."""
        with self._reloading:
            digest = files_digest(self.directory)
            if digest == self._state.seen:
                return False
            try:
                policy = load_policy(self.directory)
                if problems := suspicious(self.directory, policy, self.policy):
                    raise PolicyError(problems)
            except PolicyError as exc:
                self._reject(digest, exc)
                return False
            self._state = _State(policy, self.now(), policy.digest, self.now(), None,
                                 frozenset(policy_secrets(policy)))
            log.info("policy reloaded from %s: %d targets (digest %s)", self.directory, len(policy.targets),
                     policy.digest[:12])
            return True

    def _reject(self, digest: str, error: PolicyError) -> None:
        self._state = replace(self._state, seen=digest, seen_at=self.now(), error=error)
        for problem in error.problems:
            log.error("policy rejected, the last good policy stays in force: %s", problem)

    def health(self) -> dict:
        """``status`` (ok, or degraded while the files on disk are rejected), ``reason`` and ``policy``:
        the one in force (loaded_at, digest) and the files on disk (digest, since, accepted), with the
        problems that kept them out."""
        state = self._state
        problems = [str(p) for p in state.error.problems] if state.error else []
        return {
            "status": "degraded" if problems else "ok",
            "reason": _reason(problems),
            "policy": {
                "directory": str(self.directory),
                "loaded_at": state.loaded_at.isoformat(),
                "digest": state.policy.digest,
                "in_force": "last good policy; the files on disk were rejected" if problems else "files on disk",
                "errors": problems,
                "on_disk": {"digest": state.seen, "since": state.seen_at.isoformat(), "accepted": not problems},
            },
        }


def _reason(problems: list[str]) -> str | None:
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"the policy files on disk were rejected, the last good policy stays in force: {problems[0]}{more}"
