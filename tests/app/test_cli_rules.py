"""`workbench rules list` and `workbench rules backtest` on a real ledger and samples store holding
exactly known history (tests/detectors/history.py): the JSON shapes scripts rely on, the figures,
and every error as one line."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger, sqlite_url, write_session
from ledger.samples import SampleStore
from ledger.tables import Incident
from tests.detectors.history import END, RULES, T0, minutes, write_history
from tests.remediation.support import open_incident, write_policy

BACKTEST_KEYS = {"rule", "from", "to", "interval_seconds", "evaluations", "episodes", "fires_per_day",
                 "time_in_alert_ratio", "flaps", "services", "incidents", "incident_details", "recall", "precision",
                 "lead_time_seconds", "live", "marked", "warnings"}


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    """run(*args) -> (exit status, stdout, stderr) on a ledger with two incidents of shop: one
    from 70 to 95 min (the latency rule fires at 65), one from 330 to 350 min (after every episode)."""
    for name in (ENV_POLICY, ENV_DATA, ENV_DB):
        monkeypatch.delenv(name, raising=False)
    policy = write_policy(tmp_path / "policy", targets="targets: []\nallow_empty: true\n", rules=RULES)
    write_history(SampleStore(tmp_path / "var" / "samples", now=lambda: END))
    engine = open_ledger(sqlite_url(tmp_path / "var"))
    for opened, resolved, title in ((70, 95, "shop slow"), (330, 350, "shop down")):
        incident_id = open_incident(engine, at=minutes(opened))
        with write_session(engine) as session:
            incident = session.get(Incident, incident_id)
            incident.title, incident.resolved_at, incident.state = title, minutes(resolved), "resolved"
    engine.dispose()

    def run(*args: str):
        status = main(["--policy", str(policy), "--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_rules_list_json(cli):
    status, out, _ = cli("rules", "list", "--format", "json")
    rows = json.loads(out)
    assert status == 0 and [r["name"] for r in rows] == ["shop-latency", "shop-slow-avg", "shop-silent"]
    assert rows[0] == {"name": "shop-latency", "kind": "latency", "service": "shop", "severity": "warning",
                       "window": "1m", "for_": "5m", "keep_firing_for": "10m", "origin": "policy", "revision": None,
                       "mode": "live", "enabled": True}


def test_backtest_json_over_a_range(cli):
    status, out, err = cli("rules", "backtest", "shop-latency", "--from", T0.isoformat(), "--to", END.isoformat(),
                           "--format", "json")
    report = json.loads(out)
    assert (status, err) == (0, "") and set(report) == BACKTEST_KEYS
    assert report["from"] == "2026-11-02T00:00:00Z" and report["evaluations"] == 391
    assert [(e["start"], e["end"]) for e in report["episodes"]] == [
        ("2026-11-02T01:05:00Z", "2026-11-02T01:40:00Z"), ("2026-11-02T04:05:00Z", "2026-11-02T04:20:00Z")]
    assert report["incidents"] == {"caught": [1], "missed": [2]}
    assert (report["recall"], report["precision"], report["lead_time_seconds"]) == (0.5, 0.5, {"median": -300.0})
    assert report["live"] == {"both": 0, "replay_only": 2, "live_only": 0} and report["warnings"] == []


def test_backtest_table(cli):
    status, out, _ = cli("rules", "backtest", "shop-latency", "--from", T0.isoformat(), "--to", END.isoformat())
    assert status == 0
    assert "episodes 2 (" in out and "recall 50%, precision 50%, median lead time -300 s" in out
    assert "#2     MISSED" in out and "shop down" in out


@pytest.mark.parametrize("args, error", [
    (("rules", "backtest", "nope"), "workbench: no rule named 'nope' in the policy (its rules: shop-latency, "
                                    "shop-silent, shop-slow-avg) nor a pending suggestion\n"),
    (("rules", "backtest", "shop-latency", "--from", "2026-11-03T00:00Z", "--to", "2026-11-02T00:00Z"),
     "workbench: the range is empty: from 2026-11-03T00:00:00+00:00 is not before to 2026-11-02T00:00:00+00:00\n"),
    (("rules", "backtest", "shop-latency", "--from", "yesterday"),
     "workbench: not a time: 'yesterday' (use ISO 8601, e.g. 2026-03-28T22:00Z, or now)\n"),
    (("rules", "backtest", "shop-latency", "--since", "7d", "--to", "now"),
     "workbench: give --since, or --from and --to, not both\n"),
    (("rules", "backtest", "shop-latency", "--to", "0001-01-01"),  # the week before it is no date at all
     "workbench: '0001-01-01' is not a time between 1970 and 9000\n"),
    (("rules", "backtest", "shop-latency", "--since", "0001-01-01T00:00+14:00"),  # before year 1 in UTC
     "workbench: --since '0001-01-01T00:00+14:00': use an ISO 8601 time (2026-03-01T12:00Z) or a duration (24h, 7d)\n"),
])
def test_backtest_errors_are_one_line(cli, args, error):
    assert cli(*args)[0::2] == (1, error)


def test_a_range_with_no_data_says_so(cli):
    status, out, _ = cli("rules", "backtest", "shop-silent", "--from", "2026-12-01T00:00Z", "--to", "2026-12-01T01:00Z",
                         "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["warnings"] == [
        "no samples of the rule's series in the range",
        "its groups name no service: there are no incidents to score it against"]
