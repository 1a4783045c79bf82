"""The incident review notebook, its parameters filled in as `workbench notebook incident` fills
them, runs top to bottom on a ledger holding a real incident's activity (tests/activity.py), and
its outputs state that incident's numbers; its post-mortem draft is the CLI's."""

from __future__ import annotations

import json

import nbformat
import pytest

from app import notebooks
from app.settings import resolve
from ledger.postmortem import postmortem
from tests.activity import END, SECRET
from tests.notebooks.outputs import figure_titles, outputs_text


@pytest.fixture
def reviewed(activity):
    """The review of the activity's incident, executed: (outputs as text, the notebook, the activity, paths)."""
    act = activity
    paths = resolve(str(act.policy_dir), str(act.data_dir), env={})
    notebook = notebooks.execute(notebooks.parameterized(notebooks.notebook_path(notebooks.REVIEW),
                                                         notebooks.review_parameters(paths, act.incident_id)))
    return outputs_text(notebook), notebook, act, paths


def test_the_stored_notebook_has_no_outputs_and_a_parameters_cell():
    notebook = nbformat.read(notebooks.notebook_path(notebooks.REVIEW), as_version=4)
    assert not any(cell.get("outputs") or cell.get("execution_count") for cell in notebook.cells
                   if cell.cell_type == "code")
    (tagged,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert "incident_id = None" in tagged.source and "ledger = None" in tagged.source


def test_the_review_states_the_incidents_numbers(reviewed):
    text, notebook, act, _ = reviewed
    assert f"#{act.incident_id} shop-web failing: [STATUS] == 200 -> got 503 [resolved]" in text
    assert "service shop, severity warning, opened 2026-03-01 12:00:30 UTC, resolved 2026-03-01 12:05:00 UTC" in text
    assert "1 finding(s), 0 alert(s), 1 action request(s), 1 notification(s), 1 silence(s) touching it" in text
    assert "12:04:00 workbench  transition [observed -> contained] action request #1 fault-off: verified" in text
    assert "error ratio during the incident: peak 1.00, mean 0.44; before it: mean 0.00" in text
    assert "probe runs of shop-api, shop-web, 6 failed" in text
    assert "run 1 refinement 1. shop itself is failing" in text
    assert "#1 fault-off (containment): succeeded, decided by bob, verification passed" in text
    assert "error ratio in the 5 minutes before it: 0.53, after it: 0.00" in text
    for measure in ("time to detect: 30s", "time to acknowledge: 1m", "time to contain: 3m 30s",
                    "time to resolve: 4m 30s"):
        assert measure in text
    assert "1 other incident(s) and 1 alert(s)" in text and "PaymentsErrors" in text
    assert SECRET not in text and SECRET not in json.dumps(notebook)
    assert figure_titles(notebook) == ["Incident #1: timeline and states", "Golden signals", "Probe runs of its targets",
                      "Hypotheses: draft and refinement",
                      "Time to detect (from the first failure), acknowledge, contain and resolve (from detection)"]


def test_its_postmortem_draft_is_the_commands(reviewed):
    text, notebook, act, paths = reviewed
    (markdown,) = [output["data"]["text/markdown"] for output in notebook.cells[-1].outputs]
    assert markdown == postmortem(paths.ledger(), act.incident_id, now=END)
    assert "| resolved | 2026-03-01 12:05:00 UTC | time to resolve | 4m 30s |" in markdown
