"""Where the workbench finds its policy and keeps its data: flags, then environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ledger.db import open_ledger, sqlite_url, with_secrets
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.secrets import policy_secrets

ROOT = Path(__file__).resolve().parent.parent
ENV_POLICY, ENV_DATA, ENV_DB, ENV_PORT = (
    "WORKBENCH_POLICY_DIR", "WORKBENCH_DATA_DIR", "WORKBENCH_DATABASE_URL", "WORKBENCH_WORKER_PORT",
)


@dataclass(frozen=True)
class Paths:
    policy_dir: Path
    data_dir: Path
    database_url: str

    @property
    def samples_dir(self) -> Path:
        return self.data_dir / "samples"

    def ledger(self) -> Engine:
        """The ledger, masking in what it keeps and shows the values of the secrets the policy
        references (when it loads; secret shapes are masked whatever it says)."""
        try:
            secrets = frozenset(policy_secrets(load_policy(self.policy_dir)))
        except PolicyError:
            secrets = frozenset()
        return with_secrets(open_ledger(self.database_url), lambda: secrets)

    def environment(self) -> dict[str, str]:
        """The same settings for a child process (the worker, the UI)."""
        return {ENV_POLICY: str(self.policy_dir), ENV_DATA: str(self.data_dir), ENV_DB: self.database_url}


def resolve(policy: str | None = None, data: str | None = None, env=os.environ) -> Paths:
    policy_dir = Path(policy or env.get(ENV_POLICY) or ROOT / "policies").resolve()
    data_dir = Path(data or env.get(ENV_DATA) or ROOT / "var").resolve()
    database_url = env.get(ENV_DB) or sqlite_url(data_dir)
    return Paths(policy_dir, data_dir, database_url)
