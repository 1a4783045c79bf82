"""Fuzzing every CLI argument that takes text: each command the parser knows (but those that
start servers) runs in-process on a ledger holding an incident, a pending approval and a silence,
with hostile text in each of its arguments. Every run ends with an exit status (0, 1, 2) and,
when it failed, one line that says why; never another exception or a traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import build_parser, main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger, sqlite_url, utcnow, write_session
from ledger.repo import silences
from tests.hostile import HOSTILE_ARGUMENTS
from tests.remediation.support import open_incident, write_policy

SERVERS = {"up", "worker", "ui", "mcp", "demo fault", "probe run", "notebook open"}  # they listen (mcp: on stdio) or probe until stopped
ACTIONS = """
actions:
  - id: note
    runner: {kind: notify, message: "{{text}}"}
    parameters:
      text: {description: the note, max_length: 500}
    risk: read_only
    requires_approval: true
    postures: [demo]
    enabled: true
"""


def leaf_commands(parser: argparse.ArgumentParser, path=()) -> dict[str, list[argparse.Action]]:
    """Each command's words and the arguments it takes a value for (not flags, not --help)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return {" ".join(path): [a for a in parser._actions if a.nargs != 0 and a.dest != "help"]}
    return {name: args for group in groups for word, sub in group.choices.items()
            for name, args in leaf_commands(sub, (*path, word)).items()}


COMMANDS = {name: args for name, args in leaf_commands(build_parser()).items() if name not in SERVERS}
# text as a shell could hand it over: anything but NUL (argv cannot carry it), undecodable
# bytes included (Python gives them as lone surrogates, U+DC80 to U+DCFF)
TEXT = st.one_of(st.sampled_from(HOSTILE_ARGUMENTS), st.text(st.characters(blacklist_characters="\x00"), max_size=40),
                 st.integers(-3, 4).map(str))


def value(arg: argparse.Action):
    """Hostile text, or a value the argument takes (so that the others are reached too)."""
    if arg.choices:
        return st.one_of(st.sampled_from(sorted(map(str, arg.choices))), TEXT)
    if arg.type is not None and arg.type is not str:
        return st.one_of(st.sampled_from(["1", "1h", "2"]), TEXT)
    return TEXT


@pytest.fixture(scope="module")
def workbench(tmp_path_factory):
    """Policy and data directories, and a ledger holding incident 1, approval request 1 and silence 1."""
    root = tmp_path_factory.mktemp("cli-fuzz")
    policy = write_policy(root / "policy", actions=ACTIONS)
    engine = open_ledger(sqlite_url(root / "var"))
    incident = open_incident(engine, at=utcnow())
    with write_session(engine) as session:
        silences.add_silence(session, matchers=[{"label": "service", "op": "=", "value": "shop"}], starts_at=utcnow(),
                             ends_at=None, author="test", comment="seed", now=utcnow())
    engine.dispose()
    assert main(["--policy", str(policy), "--data", str(root / "var"), "approvals", "propose", str(incident), "note",
                 "--param", "text=hi"]) == 0
    return policy, root / "var"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_text_argument_takes_hostile_text(command, workbench, monkeypatch, tmp_path):
    policy, data = workbench
    monkeypatch.chdir(tmp_path)  # files the commands write (--output) land there
    for name in (ENV_POLICY, ENV_DATA, ENV_DB):
        monkeypatch.delenv(name, raising=False)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.fixed_dictionaries({arg.dest: value(arg) for arg in COMMANDS[command]}))
    def run(values):
        argv = ["--policy", str(policy), "--data", str(data), *command.split()]
        for arg in COMMANDS[command]:
            argv += [*arg.option_strings[:1], values[arg.dest]]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse refusing a value
                status = exc.code
        said = err.getvalue()
        assert status in (0, 1, 2), (argv, status, said)
        assert "Traceback" not in said, (argv, said)
        if said.startswith("usage:"):  # argparse refusing an argument, with the usage
            assert re.match(r"workbench[\w ]*: error: ", said.splitlines()[-1]), (argv, said)
        elif command == "policy check" and status == 2:  # a line for each problem, then the count
            assert said.splitlines()[-1].startswith("policy invalid: "), (argv, said)
        elif command.endswith(" import") and status == 1 and not said.startswith("workbench: "):  # bad lines
            assert all(re.match(r".*: line \d+: ", line) for line in said.splitlines()), (argv, said)
        elif status:
            assert said.startswith("workbench: ") and said.count("\n") == 1, (argv, said)

    run()


def test_an_endless_file_to_import_is_refused_with_the_limit(workbench, capsys):
    policy, data = workbench
    assert main(["--policy", str(policy), "--data", str(data), "routing", "import", "/dev/zero"]) == 1
    assert capsys.readouterr().err == "workbench: /dev/zero is larger than 64 MiB: split it and import each part\n"
