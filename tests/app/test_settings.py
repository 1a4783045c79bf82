"""Where the policy and the data live: a checkout keeps its own policies/ and var/; installed (here: the
code's root pointed at a tree laid out like site-packages) the platform's per-user config and data
directories, with the packaged policy files copied there once for the operator to edit. Flags and
the environment win either way, and nothing is written where the code is installed."""

from __future__ import annotations

import shutil

import pytest

from app import settings
from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY, is_checkout, resolve
from ledger.db import sqlite_url
from policies.loader import load_policy
from tests.support import ROOT

PACKAGED = sorted(p.name for p in (ROOT / "policies").glob("*.yaml"))


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """(config, data): the per-user directories the platform gives sre-workbench, in the test's tmp_path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    return tmp_path / "config" / "sre-workbench", tmp_path / "share" / "sre-workbench"


@pytest.fixture
def installed(tmp_path):
    """The code as a wheel lays it out: the policies package inside site-packages."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    shutil.copytree(ROOT / "policies", site / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def snapshot(tree):
    return sorted((str(p.relative_to(tree)), p.stat().st_mtime_ns) for p in tree.rglob("*"))


def test_a_checkout_keeps_its_own_policies_and_var(user_dirs):
    assert is_checkout(ROOT)
    paths = resolve(env={}, root=ROOT)
    assert (paths.policy_dir, paths.data_dir, paths.database_url) == (
        ROOT / "policies", ROOT / "var", sqlite_url(ROOT / "var"))
    assert not user_dirs[0].exists() and not user_dirs[1].exists()


def test_what_counts_as_a_checkout(tmp_path, installed):
    source = tmp_path / "src" / "sre-workbench"
    (source / "policies").mkdir(parents=True)
    assert is_checkout(source)  # an unpacked source tree the user may edit
    (source / "pyproject.toml").write_text("")
    (source / ".git").mkdir()
    assert is_checkout(source)
    assert not is_checkout(installed)
    (installed / "pyproject.toml").write_text("")  # a stray one in site-packages changes nothing
    assert not is_checkout(installed)


def test_installed_uses_the_user_directories_and_copies_the_policy_once(installed, user_dirs):
    config, data = user_dirs
    before = snapshot(installed)
    paths = resolve(env={}, root=installed)
    assert (paths.policy_dir, paths.data_dir, paths.database_url) == (config / "policies", data, sqlite_url(data))
    assert sorted(p.name for p in paths.policy_dir.iterdir()) == PACKAGED
    assert len(load_policy(paths.policy_dir).targets) == len(load_policy(ROOT / "policies").targets)

    (paths.policy_dir / "targets.yaml").write_text("targets: []\n")  # the operator's edit
    (paths.policy_dir / "rules.yaml").unlink()
    again = resolve(env={}, root=installed)
    assert again == paths and (again.policy_dir / "targets.yaml").read_text() == "targets: []\n"
    assert not (again.policy_dir / "rules.yaml").exists()
    assert [p.name for p in config.iterdir()] == ["policies"]  # no staging directory left behind
    assert snapshot(installed) == before


def test_flags_then_environment_win_over_the_defaults(installed, user_dirs, tmp_path):
    flags = resolve(str(tmp_path / "p"), str(tmp_path / "d"), env={ENV_POLICY: "/nowhere", ENV_DATA: "/nowhere"},
                    root=installed)
    assert (flags.policy_dir, flags.data_dir) == (tmp_path / "p", tmp_path / "d")
    env = {ENV_POLICY: str(tmp_path / "ep"), ENV_DATA: str(tmp_path / "ed"), ENV_DB: "postgresql+psycopg://db/wb"}
    from_env = resolve(env=env, root=installed)
    assert (from_env.policy_dir, from_env.data_dir, from_env.database_url) == (
        tmp_path / "ep", tmp_path / "ed", "postgresql+psycopg://db/wb")
    assert not user_dirs[0].exists() and not user_dirs[1].exists()


@pytest.fixture
def workbench(installed, monkeypatch, capsys):
    """run(*args) -> (exit status, stdout, stderr) of `workbench ARGS` as if installed in ``installed``."""
    for name in (ENV_POLICY, ENV_DATA, ENV_DB):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings, "ROOT", installed)

    def run(*args: str):
        code = main(list(args))
        return (code, *capsys.readouterr())

    return run


def test_policy_check_outside_a_checkout(workbench, user_dirs):
    count = len(load_policy(ROOT / "policies").targets)
    rules = len(load_policy(ROOT / "policies").rules.rules)
    assert workbench("policy", "check") == (
        0, f"policy ok: {user_dirs[0] / 'policies'}: {count} targets, {rules} rules\n", "")


def test_a_policy_directory_that_cannot_be_made_is_one_line(workbench, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "file"))
    assert workbench("policy", "check") == (
        1, "", f"workbench: cannot create the policy directory {tmp_path / 'file' / 'sre-workbench' / 'policies'}: "
               "Not a directory\n")
