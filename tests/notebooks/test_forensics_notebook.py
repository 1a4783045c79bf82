"""The forensics notebook runs top to bottom on a ledger the real probe path filled."""

import re
from datetime import timedelta

import nbformat
from nbclient import NotebookClient

from ledger.db import open_ledger, sqlite_url, utcnow
from policies.schema import HttpTarget
from probes.context import observe
from probes.cycle import record
from tests.support import ROOT


def seed(data_dir) -> None:
    engine = open_ledger(sqlite_url(data_dir))
    target = HttpTarget(name="shop-web", kind="http", service="shop", url="http://127.0.0.1:9/",
                        failure_threshold=2, success_threshold=2, conditions=["[STATUS] == 200"])
    start = utcnow() - timedelta(minutes=5)
    for i, status in enumerate([200, 503, 503, 503, 200, 200]):
        at = start + timedelta(seconds=30 * i)
        record(engine, target, observe(target, at, 12.5, {"STATUS": status}, status=status), now=lambda: at)
    engine.dispose()


def test_notebook_runs_on_the_ledger(tmp_path, monkeypatch):
    seed(tmp_path / "var")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    notebook = nbformat.read(ROOT / "notebooks" / "incident_forensics.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "#1 shop-web failing: [STATUS] == 200 -> got 503 [resolved]" in text
    assert "6 observations, 3 failed" in text
    assert re.search(r"shop\s+┆\s+1\s+┆\s+1\.5\s+┆\s+1\.5", text), "time to resolve: 1 incident, 90 s"
