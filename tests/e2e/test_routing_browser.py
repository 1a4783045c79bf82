"""Hypotheses and routing in a real browser: the demo service fails, the worker opens an
incident and, in the background, has a real model (SmolLM2-135M behind the Ollama-API test
server) refine its drafted hypotheses, failing over from a provider that is down. The operator
sees the draft and the refinement side by side, the decision on the Routing page, and imports
decisions another system logged."""

from __future__ import annotations

import shutil

import pytest
import yaml
from playwright.sync_api import expect

from app.demo import set_fault
from ledger import queries
from ledger.db import open_ledger, sqlite_url
from tests.ollama_server import MODEL_NAME, OllamaServer, load_model
from tests.support import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.live]
UI_TIMEOUT_MS = 60_000
GATEWAY = ('{"ts": "2026-03-01T10:00:00Z", "task": "hypothesis", "actual": "cloud-gpt", "request_id": "gw-1"}\n'
           "not json\n")


@pytest.fixture
def model_server():
    server = OllamaServer(load_model())
    yield server
    server.close()


@pytest.fixture
def routed_policy(tmp_path, model_server):
    """Written into the workbench's policy directory before it starts: a provider that is down,
    then the real model; refinement every 2 s."""
    directory = tmp_path / "policy"
    directory.mkdir()
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", directory)
    model = {"model": MODEL_NAME, "privacy": "local", "timeout": "300s", "max_tokens": 700}
    (directory / "routing.yaml").write_text(yaml.safe_dump({
        "providers": {"primary": {"host": f"http://127.0.0.1:{free_port()}", **model},
                      "local": {"host": model_server.url, **model}},
        "routes": {"hypothesis": {"chain": ["primary", "local"], "max_attempts": 3}},
        "refinement": {"interval": "2s", "per_run": 1}}))
    return directory


def test_the_worker_refines_hypotheses_and_the_routing_page_shows_the_decision(routed_policy, workbench, page,
                                                                                tmp_path, screenshots):
    ledger = open_ledger(sqlite_url(workbench.data_dir))
    try:
        set_fault(workbench.demo_port, "errors")
        incident = workbench.wait_for("the worker to open an incident", lambda: queries.list_incidents(ledger))[0]
        run = workbench.wait_for("the worker to refine its hypotheses", lambda: next(
            (r for r in queries.latest_hypothesis_runs(ledger, [incident.id]).values()
             if r.status in ("done", "failed")), None))
        assert run.status == "done", run.reason

        page.goto(f"{workbench.ui_url}?incident={incident.id}")
        page.get_by_role("tab", name="Hypotheses").click()
        expect(page.get_by_text("Draft (rules)")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("What the model changed:")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("Routed to local (route primary › local; reason failover)", exact=False)) \
            .to_be_visible()
        page.screenshot(path=screenshots / "hypotheses.png", full_page=True)

        page.get_by_role("link", name="Routing").click()
        expect(page.get_by_role("heading", name="Routing")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("primary: down: cannot connect", exact=False)).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.get_by_text("Import decisions another system logged").click()
        log = tmp_path / "gateway.jsonl"
        log.write_text(GATEWAY)
        page.locator("input[type=file]").set_input_files(str(log))
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_text("gateway.jsonl: imported 1 decision(s); 0 already imported, 1 invalid line(s)")) \
            .to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("line 2: not JSON", exact=False)).to_be_visible()
        page.screenshot(path=screenshots / "routing.png", full_page=True)
        assert [d.source for d in queries.routing_decisions(ledger)].count("import") == 1
    finally:
        ledger.dispose()
