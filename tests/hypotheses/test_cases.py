"""Recorded cases: each folder under cases/ holds an incident's evidence (evidence.yaml, written
into a real ledger the way the worker writes it), its true cause and the properties its draft
must have (expected.yaml: the true cause in the top 3 at least; bench/hypotheses.py measures how
often it comes first) and, optionally, what a model answered (answers.yaml), replayed through the
router and the official ollama client by a recorded Ollama server: no model runs here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hypotheses.refine import (
    TASK,
    hypotheses_view,
    incident_draft,
    request,
    run_refinement,
)
from ledger import queries
from tests.hypotheses.conftest import provider
from tests.hypotheses.seed import NOW, load_case, seed

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "evidence.yaml").exists())


def check_draft(draft, expected: dict) -> None:
    ids = [h.id for h in draft.hypotheses]
    kinds = {e.id: e.kind for e in draft.evidence}
    if "top" in expected:
        assert ids[0] == expected["top"], ids
    assert set(expected.get("includes", [])) <= set(ids), ids
    assert not set(expected.get("excludes", [])) & set(ids), ids
    for h in draft.hypotheses:
        assert h.evidence_ids and set(h.evidence_ids) <= set(kinds), (h.id, h.evidence_ids)
        assert 0 <= h.confidence <= 1
    by_id = {h.id: h for h in draft.hypotheses}
    for hypothesis, wanted in expected.get("cites", {}).items():
        assert set(wanted) <= {kinds[e] for e in by_id[hypothesis].evidence_ids}, by_id[hypothesis]
    for hypothesis, wanted in expected.get("checks", {}).items():
        assert [c.kind for c in by_id[hypothesis].checks] == wanted
    for hypothesis, words in expected.get("title_mentions", {}).items():
        assert all(word in by_id[hypothesis].title for word in words), by_id[hypothesis].title
    confidences = [h.confidence for h in draft.hypotheses]
    assert confidences == sorted(confidences, reverse=True)


def replay(folder: Path) -> list[str]:
    answers = yaml.safe_load((folder / "answers.yaml").read_text())
    return [a if isinstance(a, str) else json.dumps(a) for a in answers]


@pytest.mark.parametrize("folder", CASES, ids=[p.name for p in CASES])
def test_recorded_case(folder, engine, store, recorded, policy_with):
    case, expected = load_case(folder)
    incident_id = seed(case, engine, store)
    answers = replay(folder) if (folder / "answers.yaml").exists() else ['{"hypotheses": []}']
    server = recorded(answers)
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"], "max_attempts": 2})

    detail, draft = incident_draft(engine, store, policy, incident_id, NOW)
    check_draft(draft, expected["draft"])
    ranked = [h.id for h in draft.hypotheses]
    assert expected["cause"] in ranked[:3], f"the true cause {expected['cause']} is not in the top 3: {ranked}"
    if "refinement" not in expected:
        return

    run = run_refinement(engine, store, policy, request(engine, incident_id, "test", NOW), [], now=lambda: NOW)
    wanted = expected["refinement"]
    assert run.status == wanted["status"], run.reason
    view = hypotheses_view(engine, store, policy, incident_id, NOW)
    assert view.decision.task == TASK and view.decision.incident_id == incident_id
    assert view.decision.route == ["local"]
    if wanted["status"] == "failed":
        assert view.refinement is None and wanted["reason"] in run.reason
        assert (view.decision.actual, view.decision.reason) == (None, "error")
        assert len(server.requests) == 2  # the bounded retries, then fail closed
        return
    assert (view.decision.actual, view.decision.reason) == ("local", "none")
    ranked = [h.id for h in view.refinement.hypotheses]
    assert ranked[0] == wanted["top"]
    assert sorted(ranked) == sorted({*[h.id for h in draft.hypotheses], *wanted.get("added", [])})
    assert [h.id for h in view.refinement.hypotheses if h.source == "model"] == wanted.get("added", [])
    changes = [f"{c.hypothesis_id}: {c.what}" for c in view.refinement.changes]
    assert set(wanted["changes"]) <= set(changes), changes
    assert queries.routing_decisions(engine)[0].id == view.decision.id
