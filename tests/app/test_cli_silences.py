"""`workbench silences` on a real ledger (SQLite and PostgreSQL): add, list (the stable JSON
shape), expire; maintenance windows one-off and recurring; every error as one line, exit 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import ledger.db
from app.access import os_user as operator_name
from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a Sunday, 13:00 in Berlin


class Clock:
    now = NOW


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(ledger.db, "utcnow", lambda: clock.now)
    return clock


@pytest.fixture
def cli(ledger_url, tmp_path, capsys, monkeypatch, clock):
    """run(*args) -> (exit status, stdout, stderr) of `workbench --data DIR ARGS` on the test's ledger."""
    monkeypatch.delenv(ENV_POLICY, raising=False)
    monkeypatch.delenv(ENV_DATA, raising=False)
    monkeypatch.setenv(ENV_DB, ledger_url)

    def run(*args: str):
        code = main(["--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def listed(cli, *flags: str) -> list[dict]:
    code, out, _ = cli("silences", "list", "--format", "json", *flags)
    assert code == 0
    return json.loads(out)


def test_add_list_and_expire_a_silence(cli, clock):
    assert cli("silences", "add", "--match", "service=shop", "--match", "target=~web-.*", "--duration", "2h",
               "--comment", "deploy of shop", "--author", "alice") == (
        0, "silence #1 created: until 2026-03-01 14:00:00 UTC (in 2h)\n", "")
    assert listed(cli) == [{
        "id": 1, "kind": "silence", "status": "active",
        "matchers": [{"label": "service", "op": "=", "value": "shop"}, {"label": "target", "op": "=~", "value": "web-.*"}],
        "starts_at": "2026-03-01T12:00:00Z", "ends_at": "2026-03-01T14:00:00Z", "recurrence": None,
        "author": f"alice (entered by {operator_name()})", "comment": "deploy of shop", "created_at": "2026-03-01T12:00:00Z",
        "expired_at": None, "expired_by": None,
    }]
    code, out, _ = cli("silences", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["1", "silence", "active"]
    assert ('{service="shop", target=~"web-.*"}  until 2026-03-01 14:00:00 UTC (in 2h)  '
            f"alice (entered by {operator_name()}): deploy of shop") in out

    clock.now = NOW + timedelta(minutes=110)
    assert [s["status"] for s in listed(cli)] == ["expiring"]
    assert "(in 10m)" in cli("silences", "list")[1]

    assert cli("silences", "expire", "1") == (0, "silence #1 expired at 2026-03-01 13:50:00 UTC\n", "")
    assert listed(cli) == []
    [expired] = listed(cli, "--all")
    assert (expired["status"], expired["expired_at"], expired["expired_by"]) == (
        "expired", "2026-03-01T13:50:00Z", operator_name())
    clock.now = NOW + timedelta(hours=3)
    assert cli("silences", "expire", "1") == (0, "silence #1 had already ended at 2026-03-01 13:50:00 UTC\n", "")


def test_the_silences_table_lines_up_whatever_the_matchers(cli, clock):
    cli("silences", "add", "--match", "service=shop", "--duration", "2h", "--comment", "deploy")
    cli("silences", "add", "--match", "service=checkout-api", "--match", "severity=~warn.*", "--duration", "1h",
        "--comment", "noisy during the migration")
    header, *rows = cli("silences", "list")[1].splitlines()
    for column in ("STATUS", "MATCHERS", "WHEN", "AUTHOR: COMMENT"):
        at = header.index(column)
        assert all(row[at - 2:at] == "  " and row[at] != " " for row in rows), (column, rows)


def test_maintenance_windows_one_off_and_recurring(cli, clock):
    code, out, _ = cli("silences", "add", "--maintenance", "--match", "service=db", "--starts",
                       "2026-03-01T16:00+01:00", "--duration", "90m", "--comment", "db upgrade")
    assert (code, out) == (0, "maintenance #1 created: from 2026-03-01 15:00:00 UTC (in 3h), "
                              "until 2026-03-01 16:30:00 UTC (in 4h 30m)\n")
    code, out, _ = cli("silences", "add", "--maintenance", "--match", "service=backup", "--every", "weekly",
                       "--days", "sat, sun", "--at", "02:00", "--timezone", "Europe/Berlin", "--duration", "2h",
                       "--until", "2026-06-01T00:00Z", "--comment", "weekend backups")
    assert (code, out) == (0, "maintenance #2 created: weekly on sat, sun at 02:00 Europe/Berlin for 2h, "
                              "until 2026-06-01 00:00:00 UTC (in 91d 12h)\n")
    weekly, one_off = listed(cli)
    assert (one_off["kind"], one_off["status"], one_off["recurrence"]) == ("maintenance", "pending", None)
    assert (weekly["status"], weekly["starts_at"], weekly["ends_at"]) == ("pending", "2026-03-01T12:00:00Z",
                                                                          "2026-06-01T00:00:00Z")
    assert weekly["recurrence"] == {"every": "weekly", "at": "02:00", "days": ["sat", "sun"],
                                    "duration_seconds": 7200.0, "timezone": "Europe/Berlin"}

    clock.now = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert [s["status"] for s in listed(cli)] == ["pending", "active"]
    clock.now = datetime(2026, 3, 7, 1, 30, tzinfo=UTC)  # saturday, 02:30 in Berlin
    assert [s["status"] for s in listed(cli)] == ["active"]


ADD = ("silences", "add", "--comment", "deploy")
SILENCE = (*ADD, "--match", "service=shop")
WINDOW = (*ADD, "--maintenance", "--match", "service=db", "--duration", "2h")


@pytest.mark.parametrize("args, error", [
    ((*ADD, "--match", "service shop", "--duration", "2h"),
     "cannot parse matcher 'service shop': expected KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX"),
    ((*ADD, "--match", "target=~web-(", "--duration", "2h"), "target=~'web-(': not a valid regex"),
    ((*SILENCE, "--duration", "2 hours"), "not a duration: '2 hours' (use e.g. 250ms, 30s, 5m, 1h, 1d)"),
    ((*SILENCE, "--duration", "2h", "--comment", " "), "a silence needs a comment saying why"),
    ((*SILENCE, "--duration", "2h", "--starts", "tomorrow"),
     "not a time: 'tomorrow' (use ISO 8601, e.g. 2026-03-28T22:00Z, or now)"),
    ((*SILENCE, "--duration", "2h", "--at", "02:00", "--until", "2026-04-01"),
     "--at, --until: only for a recurring window (--every daily|weekly)"),
    ((*SILENCE, "--duration", "2h", "--every", "daily", "--at", "02:00", "--timezone", "UTC"),
     "--every makes a recurring maintenance window: add --maintenance"),
    ((*WINDOW, "--every", "daily", "--at", "02:00"),
     "a recurring window needs --at HH:MM and --timezone ZONE (e.g. Europe/Berlin)"),
    ((*WINDOW, "--every", "daily", "--at", "02:00", "--timezone", "Europe/Berln"),
     "unknown time zone 'Europe/Berln' (use e.g. UTC or Europe/Berlin)"),
    ((*WINDOW, "--every", "weekly", "--at", "02:00", "--timezone", "UTC"),
     "a weekly window needs its days (e.g. sat,sun)"),
    ((*WINDOW, "--every", "daily", "--at", "02:00", "--timezone", "UTC", "--until", "2026-03-01T11:00Z"),
     "a silence must end after it starts"),
    (("silences", "expire", "42"), "no silence with id 42"),
])
def test_errors_are_one_line_and_record_nothing(cli, args, error):
    code, out, err = cli(*args)
    assert (code, out) == (1, "")
    assert err.startswith(f"workbench: {error}") and err.count("\n") == 1
    assert listed(cli, "--all") == []


@pytest.mark.parametrize("command", ["list", "add", "expire"])
def test_every_silences_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["silences", command, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: workbench silences {command}")
