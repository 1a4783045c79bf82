"""`workbench incidents postmortem` and `workbench notebook` on a ledger holding a real incident's
activity (tests/activity.py): the post-mortem printed or written, the review notebook written with
its parameters filled in, run and exported to HTML, and JupyterLab started on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import nbformat
import pytest

from app import notebooks
from app.cli import main
from app.settings import resolve
from ledger.db import open_ledger, sqlite_url
from ledger.postmortem import postmortem
from policies.errors import WorkbenchError
from tests.activity import fill
from tests.support import ROOT, free_port, wait_until


@pytest.fixture
def workbench(tmp_path, capsys, monkeypatch, demo_target, receiver):
    """run(*args) -> (exit status, stdout, stderr) of the command on the activity's ledger; and the activity."""
    for name in ("WORKBENCH_POLICY_DIR", "WORKBENCH_DATA_DIR", "WORKBENCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "var"
    engine = open_ledger(sqlite_url(data))
    act = fill(engine, data, demo_target, receiver)

    def run(*args: str):
        code = main(["--data", str(data), "--policy", str(act.policy_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run, act, engine
    engine.dispose()


def test_postmortem_prints_or_writes_the_draft(workbench, tmp_path):
    run, act, engine = workbench
    code, out, _ = run("incidents", "postmortem", str(act.incident_id), "--format", "md")
    assert code == 0 and out == postmortem(engine, act.incident_id)
    assert "| resolved | 2026-03-01 12:05:00 UTC | time to resolve | 4m 30s |" in out
    code, out, _ = run("incidents", "postmortem", str(act.incident_id), "--output", "pm.md")
    assert (code, out) == (0, "wrote pm.md\n")
    assert (tmp_path / "pm.md").read_text() == postmortem(engine, act.incident_id)
    code, _, err = run("incidents", "postmortem", "99")
    assert code == 1 and err == "workbench: no incident with id 99\n"


def test_notebook_incident_writes_the_review_with_its_parameters(workbench, tmp_path):
    run, act, _ = workbench
    code, out, _ = run("notebook", "incident", str(act.incident_id))
    assert (code, out) == (0, f"wrote incident-{act.incident_id}-review.ipynb\n")
    written = nbformat.read(tmp_path / f"incident-{act.incident_id}-review.ipynb", as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in written.cells]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["injected-parameters"] and tags.count(["injected-parameters"]) == 1
    assert f"incident_id = {act.incident_id}" in written.cells[at + 1].source
    assert f"data = {str(tmp_path / 'var')!r}" in written.cells[at + 1].source
    assert not any(cell.get("outputs") for cell in written.cells if cell.cell_type == "code")
    code, _, err = run("notebook", "incident", "99")
    assert code == 1 and err == "workbench: no incident with id 99\n"


def test_notebook_incident_execute_writes_the_executed_copy_and_html(workbench, tmp_path):
    run, act, _ = workbench
    code, out, _ = run("notebook", "incident", str(act.incident_id), "--output", "review/one.ipynb", "--execute")
    assert code == 0 and out.splitlines() == ["wrote review/one.ipynb", "wrote review/one.executed.ipynb",
                                              "wrote review/one.html"]
    executed = nbformat.read(tmp_path / "review" / "one.executed.ipynb", as_version=4)
    assert any("time to resolve: 4m 30s" in output.get("text", "") for cell in executed.cells
               for output in cell.get("outputs", []))
    html = (tmp_path / "review" / "one.html").read_text()
    assert "time to resolve: 4m 30s" in html and "Post-mortem: incident #1" in html
    assert html.count('class="plotly-graph-div"') == 5, "the figures are drawn in the export, not left out"


def test_a_parameters_cell_is_needed(tmp_path):
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(bare, tmp_path / "bare.ipynb")
    with pytest.raises(WorkbenchError, match="has no cell tagged 'parameters'"):
        notebooks.parameterized(tmp_path / "bare.ipynb", {"x": 2})


def test_a_missing_extra_says_how_to_install_it():
    with pytest.raises(WorkbenchError, match=r"no_such_module_xyz not installed: .*sre-workbench\[notebook\]"):
        notebooks.require("no_such_module_xyz")


def test_notebook_open_serves_jupyterlab_on_loopback(tmp_path):
    port = free_port()
    lab = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", str(tmp_path / "var"), "notebook", "open",
                            "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)})
    try:
        def answers():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as reply:
                    return reply.status == 200
            except OSError:
                return False

        assert wait_until(answers, "JupyterLab to answer", attempts=300, pause=0.2)
    finally:
        lab.terminate()
        out, _ = lab.communicate(timeout=30)
    assert out.decode().splitlines()[0] == f"JupyterLab on http://127.0.0.1:{port}/lab (Ctrl-C stops it)"


def test_a_database_password_is_not_written_into_the_notebook(tmp_path):
    paths = resolve(str(tmp_path / "policy"), str(tmp_path / "var"),
                    env={"WORKBENCH_DATABASE_URL": "postgresql+psycopg://ops:s3cret-pw@db.example/ledger"})
    assert notebooks.review_parameters(paths, 7) == {"incident_id": 7, "ledger": None, "data": str(tmp_path / "var"),
                                                     "policy": str(tmp_path / "policy")}
    plain = resolve(str(tmp_path / "policy"), str(tmp_path / "var"), env={})
    assert notebooks.review_parameters(plain, 7)["ledger"] == sqlite_url(tmp_path / "var")


def test_an_output_that_cannot_be_written_is_one_line(workbench, tmp_path):
    run, act, _ = workbench
    code, _, err = run("incidents", "postmortem", str(act.incident_id), "--output", "missing/pm.md")
    assert (code, err) == (1, "workbench: cannot write missing/pm.md: No such file or directory\n")
    for command in (("incidents", "postmortem"), ("notebook", "incident")):
        code, _, err = run(*command, str(act.incident_id), "--output", str(tmp_path))  # a directory
        assert code == 1 and err.startswith(f"workbench: cannot write {tmp_path}") and err.count("\n") == 1, err
