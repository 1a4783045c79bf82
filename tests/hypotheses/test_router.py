"""The router on a real ledger with the official ollama client against recorded Ollama
servers: gates (rule-first categories, privacy, budget, undeclared tasks), failover along the
chain, bounded retries of invalid answers, fail-closed, and one decision recorded per call."""

from __future__ import annotations

from dataclasses import replace

from hypotheses.refine import hypothesis_call, incident_draft
from hypotheses.router import Router
from ledger import queries
from tests.hypotheses.conftest import VALID, down, provider
from tests.hypotheses.seed import NOW


def route(policy, incident, task: str = "hypothesis"):
    engine, store, incident_id = incident
    detail, draft = incident_draft(engine, store, policy, incident_id, NOW)
    call = hypothesis_call(detail, draft, [])
    return Router(policy.routing, engine, now=lambda: NOW).route(replace(call, task=task))


def test_the_first_provider_serves_as_declared(incident, recorded, policy_with):
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url, cost_per_token=0.001)}, {"chain": ["local"]})
    routed = route(policy, incident)
    d = routed.decision
    assert routed.answer.hypotheses[0].id == "target-itself"
    assert (d.route, d.expected, d.actual, d.reason, d.detail) == (["local"], "local", "local", "none", "")
    assert (d.prompt_tokens, d.completion_tokens, d.tokens) == (100, 20, 120)
    assert abs(d.cost - 0.12) < 1e-9 and d.latency_ms is not None and d.category == "availability"
    assert server.requests[0]["format"]["properties"]["hypotheses"]["items"]["properties"]["evidence_ids"]
    assert queries.routing_decisions(incident[0]) == [d]


def test_fails_over_when_the_first_provider_is_down(incident, recorded, policy_with):
    server = recorded([VALID])
    policy = policy_with({"primary": provider(down()), "backup": provider(server.url)},
                         {"chain": ["primary", "backup"]})
    d = route(policy, incident).decision
    assert (d.expected, d.actual, d.reason) == ("primary", "backup", "failover")
    assert [(a["provider"], a["outcome"]) for a in d.attempts] == [("primary", "down"), ("backup", "served")]
    assert "primary: down: cannot connect to http://127.0.0.1:" in d.detail


def test_fails_over_on_an_error_answer_and_on_a_missing_model(incident, recorded, policy_with):
    broken, good = recorded([(500, "model runner crashed")]), recorded([VALID])
    policy = policy_with({"broken": provider(broken.url), "unknown": provider(good.url, model="nope:7b"),
                          "good": provider(good.url)}, {"chain": ["broken", "unknown", "good"]})
    d = route(policy, incident).decision
    assert [(a["provider"], a["outcome"]) for a in d.attempts] == [("broken", "error"), ("unknown", "down"),
                                                                   ("good", "served")]
    assert "answered 500: model runner crashed" in d.detail and "model nope:7b is not on" in d.detail


def test_every_provider_down_fails_closed(incident, policy_with):
    policy = policy_with({"a": provider(down()), "b": provider(down())}, {"chain": ["a", "b"]})
    routed = route(policy, incident)
    assert routed.answer is None
    assert (routed.decision.actual, routed.decision.reason) == (None, "error")


def test_an_invalid_answer_is_asked_again_a_bounded_number_of_times(incident, recorded, policy_with):
    server = recorded(["not json at all", VALID])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"], "max_attempts": 2})
    d = route(policy, incident).decision
    assert (d.actual, d.reason, d.attempts[0]["tries"], d.tokens) == ("local", "none", 2, 240)
    assert "That answer is invalid" in server.requests[1]["messages"][-1]["content"]

    server = recorded(['{"hypotheses": [{"id": "target-itself", "title": "t", "explanation": "e", '
                       '"confidence": -0.5, "evidence_ids": ["finding:1"]}]}'])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"], "max_attempts": 3})
    routed = route(policy, incident)
    assert routed.answer is None and len(server.requests) == 3
    assert routed.decision.attempts[0]["outcome"] == "invalid"
    assert "no valid answer in 3 tries" in routed.decision.detail
    assert "greater than or equal to 0" in routed.decision.detail


def test_the_privacy_gate_keeps_incident_data_from_remote_providers(incident, recorded, policy_with):
    remote, local = recorded([VALID]), recorded([VALID])
    policy = policy_with({"cloud": provider(remote.url, privacy="remote"), "local": provider(local.url)},
                         {"chain": ["cloud", "local"], "privacy": "local"})
    d = route(policy, incident).decision
    assert (d.expected, d.actual, d.reason, d.privacy_refusals) == ("cloud", "local", "gate", 1)
    assert remote.requests == [] and len(local.requests) == 1
    assert "privacy gate: cloud is remote" in d.detail

    policy = policy_with({"cloud": provider(remote.url, privacy="remote")}, {"chain": ["cloud"], "privacy": "any"})
    assert route(policy, incident).decision.actual == "cloud"


def test_rule_first_categories_never_go_to_a_model(incident, recorded, policy_with):
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url)},
                         {"chain": ["local"], "llm_allowed": {"availability": False, "latency": True}})
    routed = route(policy, incident)
    assert routed.answer is None and server.requests == []
    assert (routed.decision.reason, routed.decision.actual) == ("gate", None)
    assert "category availability is rule-first" in routed.decision.detail


def test_the_daily_token_budget_stops_calls_once_used(incident, recorded, policy_with):
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"], "daily_token_budget": 100})
    assert route(policy, incident).decision.tokens == 120
    d = route(policy, incident).decision
    assert (d.reason, d.actual, len(server.requests)) == ("budget", None, 1)
    assert "daily token budget of 100 used up (120 tokens today)" in d.detail


def test_a_task_without_a_route_is_recorded_as_undeclared(incident, recorded, policy_with):
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"]})
    d = route(policy, incident, task="summary").decision
    assert (d.task, d.reason, d.route, d.actual) == ("summary", "undeclared", [], None)
    assert server.requests == []


def test_a_category_may_have_its_own_chain(incident, recorded, policy_with):
    general, special = recorded([VALID]), recorded([VALID])
    policy = policy_with({"general": provider(general.url), "special": provider(special.url)},
                         {"chain": ["general"], "chain_by_category": {"availability": ["special"]}})
    d = route(policy, incident).decision
    assert (d.route, d.actual) == (["special"], "special") and general.requests == []
