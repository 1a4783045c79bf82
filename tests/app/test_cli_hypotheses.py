"""`workbench incidents hypotheses` and `workbench routing` on a real ledger (SQLite and
PostgreSQL): the draft and the model's refinement with its decision, decisions listed in a
range, another system's decisions imported (twice: nothing new); errors as one line, exit 1."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

import ledger.db
from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from hypotheses.refine import request, run_refinement
from ledger.db import open_ledger
from ledger.samples import SampleStore
from policies.loader import load_policy
from tests.hypotheses.conftest import VALID, provider
from tests.hypotheses.recorded import RecordedOllama
from tests.hypotheses.seed import NOW, load_case, seed
from tests.support import ROOT


@pytest.fixture
def model():
    server = RecordedOllama([VALID])
    yield server
    server.close()


@pytest.fixture
def workbench(ledger_url, tmp_path, capsys, monkeypatch, model):
    """The server-errors case in the test's ledger and samples; a policy routing to a recorded
    model. run(*args) -> (exit status, stdout, stderr)."""
    monkeypatch.delenv(ENV_POLICY, raising=False)
    monkeypatch.delenv(ENV_DATA, raising=False)
    monkeypatch.setenv(ENV_DB, ledger_url)
    monkeypatch.setattr(ledger.db, "utcnow", lambda: NOW)
    policy_dir, data = tmp_path / "policy", tmp_path / "var"
    policy_dir.mkdir()
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", policy_dir)
    (policy_dir / "routing.yaml").write_text(yaml.safe_dump({"providers": {"local": provider(model.url)},
                                                             "routes": {"hypothesis": {"chain": ["local"]}}}))
    engine = open_ledger(ledger_url)
    store = SampleStore(data / "samples", now=lambda: NOW)
    case, _ = load_case(ROOT / "tests" / "hypotheses" / "cases" / "server-errors")
    incident_id = seed(case, engine, store)

    def run(*args: str):
        code = main(["--policy", str(policy_dir), "--data", str(data), *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.refine = lambda: run_refinement(engine, store, load_policy(policy_dir),
                                        request(engine, incident_id, "ana", NOW), [], now=lambda: NOW)
    run.incident = incident_id
    yield run
    engine.dispose()


def test_hypotheses_show_the_draft_then_the_refinement_with_its_decision(workbench):
    code, out, err = workbench("incidents", "hypotheses", str(workbench.incident), "--format", "json")
    shown = json.loads(out)
    assert (code, err, shown["incident_id"], shown["refinement"]) == (0, "", workbench.incident, None)
    assert [h["id"] for h in shown["draft"]] == ["server-errors", "target-itself"]
    assert set(shown) == {"incident_id", "since", "opened_at", "until", "evidence", "draft", "refinement"}
    assert {"id", "title", "explanation", "confidence", "evidence_ids", "checks", "source"} == set(shown["draft"][0])

    workbench.refine()
    code, out, _ = workbench("incidents", "hypotheses", str(workbench.incident), "--format", "json")
    refinement = json.loads(out)["refinement"]
    assert (refinement["status"], refinement["requested_by"], refinement["reason"]) == ("done", "ana", None)
    assert [h["id"] for h in refinement["hypotheses"]] == ["target-itself", "server-errors"]
    assert {"hypothesis_id": "target-itself", "what": "rank 2 → 1"} in refinement["changes"]
    assert (refinement["decision"]["actual"], refinement["decision"]["reason"]) == ("local", "none")

    code, out, _ = workbench("incidents", "hypotheses", str(workbench.incident))
    assert code == 0
    assert "Draft (rules):\n  1. [0.55] shop answers with server errors (HTTP 503)" in out
    assert "Model refinement:\n  1. [0.60] shop itself is failing" in out
    assert "decision #1: route local, used local, reason none" in out


def test_routing_decisions_lists_every_decision_in_the_range(workbench, tmp_path):
    workbench.refine()
    workbench.refine()
    code, out, _ = workbench("routing", "decisions", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [2, 1]
    assert set(rows[0]) >= {"at", "task", "incident_id", "route", "expected", "actual", "reason", "detail",
                            "latency_ms", "tokens", "attempts"}
    limited = workbench("routing", "decisions", "--limit", "1", "--format", "json")[1]
    assert [r["id"] for r in json.loads(limited)] == [2]
    assert json.loads(workbench("routing", "decisions", "--since", "2026-03-01T12:00:01Z", "--format", "json")[1]) == []
    assert len(json.loads(workbench("routing", "decisions", "--since", "1h", "--format", "json")[1])) == 2
    code, out, _ = workbench("routing", "decisions")
    assert out.splitlines()[1].split()[:3] == ["2", "2026-03-01", "12:00:00"]


def test_routing_import_reports_invalid_lines_and_imports_nothing_twice(workbench, tmp_path):
    log = tmp_path / "gateway.jsonl"
    log.write_text('{"ts": "2026-03-01T11:00:00Z", "task": "hypothesis", "actual": "cloud", "request_id": "a"}\n'
                   "{oops\n"
                   '{"ts": "2026-03-01T11:01:00Z", "task": "hypothesis", "actual": "local"}\n')
    assert workbench("routing", "import", str(log)) == (
        1, f"{log}: imported 2 decision(s); 0 already imported, 1 invalid line(s)\n",
        f"{log}: line 2: not JSON: Expecting property name enclosed in double quotes at column 2\n")
    code, out, _ = workbench("routing", "import", str(log))
    assert out == f"{log}: imported 0 decision(s); 2 already imported, 1 invalid line(s)\n"
    rows = json.loads(workbench("routing", "decisions", "--format", "json")[1])
    assert [(r["actual"], r["reason"], r["source"]) for r in rows] == [("local", "none", "import"),
                                                                       ("cloud", "off-policy", "import")]


@pytest.mark.parametrize("args, message", [
    (("incidents", "hypotheses", "99"), "workbench: no incident with id 99\n"),
    (("routing", "import", "/nonexistent/x.jsonl"),
     "workbench: cannot read /nonexistent/x.jsonl: No such file or directory\n"),
    (("routing", "decisions", "--since", "last tuesday"),
     "workbench: --since 'last tuesday': use an ISO 8601 time (2026-03-01T12:00Z) or a duration (24h, 7d)\n"),
])
def test_errors_are_one_line(workbench, args, message):
    assert workbench(*args) == (1, "", message)
