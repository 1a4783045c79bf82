"""Refinement runs on a real ledger: the prompt that leaves the process is redacted, the
worker's job takes the operator's requests first and refines open incidents whose evidence
changed, a run left running by a stopped worker fails, the plan's checks run, and the worker
runs the job off its event loop and counts it in /metrics."""

from __future__ import annotations

import asyncio

import yaml
from prometheus_client import generate_latest

from app.worker.jobs import Worker
from hypotheses.checks import run_check
from hypotheses.models import Check
from hypotheses.refine import incident_draft, refine_due, request, run_refinement
from ledger import queries
from ledger.db import write_session
from ledger.repo import hypotheses, incidents
from ledger.samples import SampleStore
from policies.holder import PolicyHolder
from policies.schema import TargetsFile
from policies.secrets import policy_secrets
from tests.hypotheses.conftest import VALID, down, provider
from tests.hypotheses.seed import NOW, load_case, offset, seed
from tests.support import ROOT

SECRET = "s3cr3t-9f8e7d6c"
TARGETS = """
targets:
  - {name: shop-web, kind: http, service: shop, url: "http://127.0.0.1:9/", failure_threshold: 1,
     headers: {Authorization: "Bearer ${SHOP_TOKEN}"}, conditions: ["[STATUS] == 200"]}
"""


def test_the_prompt_carries_no_secrets_tokens_or_email_addresses(engine, store, recorded, policy_with, monkeypatch):
    case, _ = load_case(ROOT / "tests" / "hypotheses" / "cases" / "change-before-incident")
    case["alerts"] = [{"alertname": "ShopSlow", "labels": {"service": "shop", "owner": "ops-team@example.org"},
                       "at": "-9m", "annotations": {"summary": f"key {SECRET} leaked; token=abcd1234efgh; jwt "
                                                    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX3g"}}]
    case["silences"][0]["comment"] = f"deploy shop 4.2, rotate {SECRET}"
    incident_id = seed(case, engine, store)
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"]})
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    policy = policy.model_copy(update={"targets": TargetsFile.model_validate(yaml.safe_load(TARGETS)).targets})
    assert policy_secrets(policy) == [SECRET]

    run_refinement(engine, store, policy, request(engine, incident_id, "test", NOW), policy_secrets(policy),
                   now=lambda: NOW)
    prompt = "\n".join(server.prompts)
    assert "deploy shop 4.2" in prompt and "***" in prompt, "the evidence is there, masked where it must be"
    for leak in (SECRET, "ana@example.com", "ops-team@example.org", "abcd1234efgh", "eyJhbGciOiJIUzI1NiJ9"):
        assert leak not in prompt


def test_the_workers_job_takes_requests_first_then_incidents_whose_evidence_changed(engine, store, recorded,
                                                                                     policy_with):
    case, _ = load_case(ROOT / "tests" / "hypotheses" / "cases" / "dependency-down")
    seed(case, engine, store)
    api, db = (next(i.id for i in queries.list_incidents(engine) if i.service == s) for s in ("orders", "db"))
    server = recorded([VALID])
    policy = policy_with({"local": provider(server.url)}, {"chain": ["local"]},
                         refinement={"enabled": True, "interval": "30s", "per_run": 1})
    request(engine, db, "ana", NOW)

    first = refine_due(engine, store, policy, [], now=lambda: NOW)
    assert [(r.incident_id, r.requested_by) for r in first] == [(db, "ana")]
    second = refine_due(engine, store, policy, [], now=lambda: NOW)
    assert [(r.incident_id, r.requested_by) for r in second] == [(api, "worker")]
    assert refine_due(engine, store, policy, [], now=lambda: NOW) == [], "nothing changed: nothing to refine"

    with write_session(engine) as session:  # a rule finding folds into the orders incident: its evidence changed
        at = offset("-1m")
        spec = incidents.FindingSpec(rule="rule:orders-errors", target="orders-api", service="orders", severity="warning",
                                summary="orders-errors: 40% errors", correlation_key="orders/orders-api",
                                labels={"category": "errors"})
        incidents.open_finding(session, spec, [incidents.RuleEvidence(spec.summary, {"value": 0.4}, at)], at)
    assert [r.incident_id for r in refine_due(engine, store, policy, [], now=lambda: NOW)] == [api]


def test_a_run_left_running_by_a_stopped_worker_fails(incident, policy_with):
    engine, store, incident_id = incident
    policy = policy_with({"local": provider(down())}, {"chain": ["local"]}, refinement={"enabled": False})
    run = request(engine, incident_id, "ana", offset("-5m"))
    with write_session(engine) as session:
        hypotheses.start_refinement(session, run.id, "key", {}, offset("-5m"))
    assert refine_due(engine, store, policy, [], now=lambda: NOW) == []
    stale = queries.latest_hypothesis_runs(engine, [incident_id])[incident_id]
    assert (stale.status, stale.reason) == ("failed", "interrupted: the worker stopped before it finished")


def test_the_plans_checks_run_over_the_drafts_window(incident, policy_with):
    engine, store, incident_id = incident
    policy = policy_with({"local": provider(down())}, {"chain": ["local"]})
    _, draft = incident_draft(engine, store, policy, incident_id, NOW)
    series, observations = next(h for h in draft.hypotheses if h.id == "server-errors").checks

    found = run_check(series, draft, engine, store)
    assert found.rows == [{"series": 'probe_success{"kind":"http","service":"shop","target":"shop-web"}',
                           "since the opening": 0.0, "before": 1.0, "samples": 40}]
    found = run_check(observations, draft, engine, store)
    assert found.summary == "2 recent runs, 2 failed" and found.rows[0]["status"] == 503
    found = run_check(Check(kind="incidents", title="shop's incidents", params={"service": "shop"}), draft, engine,
                      store)
    assert found.summary == "1 incident(s) of shop in the window" and found.rows[0]["id"] == incident_id


def test_the_worker_refines_off_its_event_loop_and_counts_runs(tmp_path, engine, incident, policy_with):
    _, store, incident_id = incident
    policy_with({"local": provider(down())}, {"chain": ["local"]})
    (tmp_path / "policy" / "targets.yaml").write_text("allow_empty: true  # no targets: only refinement\n")
    worker = Worker(PolicyHolder(tmp_path / "policy", now=lambda: NOW), engine, SampleStore(tmp_path / "s"))
    asyncio.run(worker._refine())
    run = queries.latest_hypothesis_runs(engine, [incident_id])[incident_id]
    assert run.status == "failed" and run.reason.startswith("error: local: down: cannot connect")
    assert 'workbench_hypothesis_runs_total{status="failed"} 1' in generate_latest(worker.registry).decode()
