"""Where the workbench finds its policy and keeps its data: flags, then environment, then defaults.

The defaults depend on where the code runs from. In a checkout they are the tree's own policies/
and var/. Installed (from a wheel, into site-packages) they are the platform's per-user
directories: the data directory, and policies/ in the config directory, which gets a copy of the
packaged default policy files on first use for the operator to edit. Nothing is ever written
inside site-packages."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from sqlalchemy import Engine

from ledger.db import open_ledger, sqlite_url, with_secrets
from policies.errors import PolicyError, WorkbenchError
from policies.loader import load_policy
from policies.secrets import policy_secrets

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "sre-workbench"
ENV_POLICY, ENV_DATA, ENV_DB, ENV_PORT = (
    "WORKBENCH_POLICY_DIR", "WORKBENCH_DATA_DIR", "WORKBENCH_DATABASE_URL", "WORKBENCH_WORKER_PORT",
)
INSTALLED_UNDER = frozenset({"site-packages", "dist-packages"})


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


def resolve(policy: str | None = None, data: str | None = None, env=os.environ, root: Path | None = None) -> Paths:
    """The directories and database to use; ``root`` is where the code lives (default: this tree)."""
    root = root or ROOT
    checkout = is_checkout(root)
    if policy := policy or env.get(ENV_POLICY):
        policy_dir = Path(policy)
    elif checkout:
        policy_dir = root / "policies"
    else:
        policy_dir = seeded(Path(user_config_dir(APP_NAME, appauthor=False)) / "policies", root / "policies")
    data_dir = Path(data or env.get(ENV_DATA) or (root / "var" if checkout else user_data_dir(APP_NAME, appauthor=False)))
    data_dir = data_dir.resolve()
    return Paths(policy_dir.resolve(), data_dir, env.get(ENV_DB) or sqlite_url(data_dir))


def is_checkout(root: Path) -> bool:
    """A source tree rather than an installed package: a git checkout with its pyproject.toml, or a
    tree outside site-packages whose policies/ the user may edit."""
    if (root / "pyproject.toml").is_file() and (root / ".git").exists():
        return True
    return not INSTALLED_UNDER & set(root.parts) and os.access(root / "policies", os.W_OK)


def seeded(directory: Path, packaged: Path) -> Path:
    """``directory``; made on first use with a copy of the packaged policy files (``packaged``/*.yaml),
    whole or not at all, so that two processes starting at once see one complete copy."""
    if directory.exists():
        return directory
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".policies-", dir=directory.parent))
    except OSError as exc:
        raise _cannot_create(directory, exc) from None
    try:
        for source in sorted(packaged.glob("*.yaml")):
            shutil.copyfile(source, staging / source.name)
        staging.rename(directory)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not directory.is_dir():  # else another process made it first
            raise _cannot_create(directory, exc) from None
    return directory


def _cannot_create(directory: Path, exc: OSError) -> WorkbenchError:
    return WorkbenchError(f"cannot create the policy directory {directory}: {exc.strerror or exc}")
