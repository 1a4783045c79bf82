"""`workbench incidents import` on a real ledger (SQLite and PostgreSQL): past outages from a CSV
or JSON Lines export become resolved incidents marked as imported, once however often the file
is imported; bad rows are told by line number; a backtest scores against them from day one."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.db import open_ledger
from ledger.queries import finding_labels, incident_detail, list_incidents
from ledger.samples import SampleStore
from tests.detectors.history import END, RULES, T0, write_history
from tests.remediation.support import write_policy

CSV = """service,title,severity,opened_at,resolved_at,labels,owner
shop,Checkout slow,SEV1,2026-11-02T01:10:00Z,2026-11-02T01:35:00Z,"{""category"": ""latency""}",ann
shop,Search down,warning,2026-11-02T06:30:00+01:00,2026-11-02T06:50:00+01:00,category=availability;team=search,bob
shop,,critical,2026-11-02T06:00:00Z,2026-11-02T06:10:00Z,,
db,Replica lag,purple,2026-11-02T06:00:00Z,2026-11-02T06:10:00Z,,
db,Backwards,info,2026-11-02T06:00:00Z,2026-11-02T05:10:00Z,,
db,Bad time,info,yesterday,2026-11-02T05:10:00Z,,
"""
JSONL = """{"service": "db", "title": "Primary failover", "severity": "critical", "opened_at": "2026-11-01T10:00:00Z", "resolved_at": "2026-11-01T10:20:00Z"}

not json
[1, 2]
{"service": "db", "title": "x", "severity": "info", "opened_at": "2026-11-01T10:00:00Z"}
"""


@pytest.fixture
def cli(ledger_url, tmp_path, capsys, monkeypatch):
    for name in (ENV_POLICY, ENV_DATA):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_DB, ledger_url)
    policy = write_policy(tmp_path / "policy", targets="targets: []\nallow_empty: true\n", rules=RULES)

    def run(*args: str):
        status = main(["--policy", str(policy), "--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_a_csv_export_becomes_resolved_imported_incidents_once(cli, tmp_path, ledger_url):
    export = tmp_path / "past.csv"
    export.write_text(CSV)
    assert cli("incidents", "import", str(export)) == (1, f"{export}: imported 2 incident(s); 0 already imported, "
                                                          "4 invalid line(s)\n", (
        f"{export}: line 4: title: String should have at least 1 character\n"
        f"{export}: line 5: severity: unknown severity 'purple' (use critical, warning or info)\n"
        f"{export}: line 6: resolved_at is before opened_at\n"
        f"{export}: line 7: opened_at: Input should be a valid datetime or date, input is too short\n"))
    assert cli("incidents", "import", str(export))[1] == (f"{export}: imported 0 incident(s); 2 already imported, "
                                                          "4 invalid line(s)\n")
    engine = open_ledger(ledger_url)
    rows = sorted(list_incidents(engine), key=lambda i: i.id)
    assert [(i.title, i.state, i.severity, i.service) for i in rows] == [
        ("Checkout slow", "resolved", "critical", "shop"), ("Search down", "resolved", "warning", "shop")]
    detail = incident_detail(engine, rows[1].id)
    assert detail.opened_at.isoformat().startswith("2026-11-02T05:30:00")  # +01:00 taken as such
    assert detail.correlation_key.startswith("imported/")
    assert detail.findings[0].rule == "import"
    assert finding_labels(engine, rows[1].id)[detail.findings[0].id]["team"] == "search"
    assert detail.timeline[0].message == "opened: Search down (imported from past.csv)"
    engine.dispose()


def test_json_lines_and_their_bad_lines(cli, tmp_path):
    export = tmp_path / "past.jsonl"
    export.write_text(JSONL)
    status, out, err = cli("incidents", "import", str(export))
    assert (status, out) == (1, f"{export}: imported 1 incident(s); 0 already imported, 3 invalid line(s)\n")
    assert err.splitlines() == [
        f"{export}: line 3: not JSON: Expecting value at column 1",
        f"{export}: line 4: not a JSON object",
        f"{export}: line 5: resolved_at: Field required"]


def test_a_header_without_the_fields_is_one_line(cli, tmp_path):
    export = tmp_path / "past.csv"
    export.write_text("name,when\nshop,now\n")
    assert cli("incidents", "import", str(export))[0::2] == (1, (
        "workbench: the header row lacks opened_at, resolved_at, service, severity, title (columns: service, title, "
        "severity, opened_at, resolved_at, and optional labels)\n"))


def test_a_backtest_scores_against_imported_incidents(cli, tmp_path):
    """The latency rule fires at 65 min; the imported "Checkout slow" opened at 70 min."""
    write_history(SampleStore(tmp_path / "var" / "samples", now=lambda: END))
    export = tmp_path / "past.csv"
    export.write_text(CSV)
    cli("incidents", "import", str(export))
    status, out, _ = cli("rules", "backtest", "shop-latency", "--from", T0.isoformat(), "--to", END.isoformat(),
                         "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["incidents"]["caught"] == [1] and report["incidents"]["missed"] == [2]
    assert report["lead_time_seconds"] == {"median": -300.0}
