"""The fleet notebooks (alert noise, service health, LLM routing) run top to bottom, their
parameters filled in, on a ledger holding a real incident's activity (tests/activity.py), and
their outputs state its numbers."""

from __future__ import annotations

import nbformat
import pytest

from app import notebooks
from tests.activity import END, SECRET
from tests.notebooks.outputs import figure_titles, outputs_text

FLEET = ("alert_noise.ipynb", "service_health.ipynb", "llm_routing.ipynb")


@pytest.fixture
def run(activity):
    """run(name, **parameters) -> the notebook executed over the activity's last 30 days."""

    def execute(name: str, **parameters):
        given = {"data": str(activity.data_dir), "policy": str(activity.policy_dir), "until": END.isoformat(), **parameters}
        notebook = notebooks.execute(notebooks.parameterized(notebooks.notebook_path(name), given))
        text = outputs_text(notebook)
        assert SECRET not in text
        return text, figure_titles(notebook)

    return execute


@pytest.mark.parametrize("name", FLEET)
def test_stored_without_outputs_with_a_parameters_cell(name):
    notebook = nbformat.read(notebooks.notebook_path(name), as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]


def test_alert_noise(run):
    text, titles = run("alert_noise.ipynb")
    assert "from 2026-01-30 14:00 to 2026-03-01 14:00 UTC" in text
    assert ("probe:http on shop-api: 1 episode(s), 0 flap(s), 0 incident(s), 100% suppressed, 0% called noise"
            in text)
    assert "probe:http on shop-web: 1 episode(s), 0 flap(s), 1 incident(s), 0% suppressed" in text
    assert "shop probe:http: 1 incident(s) from 1 finding(s)" in text
    assert "payments alert:PaymentsErrors: 1 incident(s) from 1 finding(s)" in text
    assert "shop: 1 incident(s), 1 acknowledged, 1 resolved; MTTA 1m, MTTR 4m 30s" in text
    assert titles == ["Episodes per rule and target (colour: share suppressed)", "Episodes over time, by rule",
                      "Incidents per service and rule", "Mean time an incident spends in each state (s)"]


def test_service_health(run):
    text, titles = run("service_health.ipynb", objective=0.99)
    assert "1 service(s) with traffic: shop" in text
    assert "shop: availability 90.000% against 99.000%; error budget spent 1000.0%, left -900.0%" in text
    assert "shop 2026-03-01: worst p95 41.9 ms, within 800 ms" in text
    assert titles == ["Availability per day", "Error budget spent so far", "Worst p95 and p99 latency per day (ms)"]


def test_llm_routing(run):
    text, titles = run("llm_routing.ipynb")
    assert "1 call(s), 120 tokens, cost 0.0000, 0 off the expected route, 0 served by none" in text
    assert "hypothesis served by local: 1 call(s), 120 tokens, cost 0.0000" in text
    assert titles == ["Calls per day, by provider that served", "Tokens per day"]
