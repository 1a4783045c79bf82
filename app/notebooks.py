"""The notebooks in notebooks/: a copy of one with its parameters filled in, run by a kernel and
exported to HTML (``workbench notebook incident``), and JupyterLab on them (``workbench notebook
open``). Parameters follow papermill's convention: the cell tagged ``parameters`` holds the
defaults and a cell tagged ``injected-parameters`` right after it overrides them. These need the
``notebook`` extra (nbformat, nbclient, nbconvert, ipykernel, jupyterlab)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, make_url

from app.settings import ROOT, Paths, resolve
from ledger.db import utcnow
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.loader import Policy, load_policy

NOTEBOOKS = ROOT / "notebooks"
REVIEW = "incident_review.ipynb"
PARAMETERS, INJECTED = "parameters", "injected-parameters"
EXECUTE_TIMEOUT = 600  # seconds a cell may take
INSTALL = "pip install 'sre-workbench[notebook]' (in a checkout: .venv/bin/pip install -e '.[notebook]')"
LAB_PORT = 8888


@dataclass(frozen=True)
class Workbench:
    """What a notebook reads: the ledger, the samples store and the policy."""

    paths: Paths
    engine: Engine
    store: SampleStore
    policy: Policy


def open_workbench(ledger: str | None = None, data: str | None = None, policy: str | None = None) -> Workbench:
    """The workbench a notebook's parameters name: a database URL, a data directory, a policy
    directory; each None is the workbench's own (its environment, else the checkout's)."""
    paths = resolve(policy, data)
    paths = replace(paths, database_url=ledger or paths.database_url)
    return Workbench(paths, paths.ledger(), SampleStore(paths.samples_dir), load_policy(paths.policy_dir))


def until_time(until: str | None) -> datetime:
    """A notebook's ``until`` parameter: an ISO 8601 time, or None for now."""
    return datetime.fromisoformat(until) if until else utcnow()


def require(*modules: str) -> None:
    """Fail with how to install the notebook extra when one of ``modules`` is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise WorkbenchError(f"{', '.join(missing)} not installed: the notebook extra is needed: {INSTALL}")


def notebook_path(name: str) -> Path:
    path = NOTEBOOKS / name
    if not path.is_file():
        raise WorkbenchError(f"{path} not found: the notebooks come with a checkout of the workbench")
    return path


def review_parameters(paths: Paths, incident_id: int) -> dict[str, object]:
    """The review notebook's parameters for ``incident_id`` on this workbench's ledger and data. A
    database URL with a password is not written into the notebook: the kernel reads it from the
    environment (WORKBENCH_DATABASE_URL), as the workbench does."""
    url = make_url(paths.database_url)
    return {"incident_id": incident_id, "ledger": None if url.password else paths.database_url,
            "data": str(paths.data_dir), "policy": str(paths.policy_dir)}


def parameterized(source: Path, parameters: dict[str, object]):
    """The notebook at ``source`` with a cell tagged injected-parameters setting ``parameters``,
    right after its parameters cell (replacing an injected cell already there)."""
    require("nbformat")
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    cells = [c for c in notebook.cells if INJECTED not in c.metadata.get("tags", [])]
    tagged = [i for i, c in enumerate(cells) if PARAMETERS in c.metadata.get("tags", [])]
    if not tagged:
        raise WorkbenchError(f"{source.name} has no cell tagged {PARAMETERS!r}")
    text = "# Parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(text, metadata={"tags": [INJECTED]}))
    notebook.cells = cells
    return notebook


def execute(notebook, timeout: int = EXECUTE_TIMEOUT):
    """Run every cell of ``notebook`` in a fresh python3 kernel started in the checkout; the
    notebook comes back with its outputs."""
    require("nbclient", "ipykernel")
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def html(notebook) -> str:
    """An executed notebook as one HTML page, its figures drawn."""
    require("nbconvert")
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


def export_html(notebook, path: Path) -> Path:
    path.write_text(html(notebook), encoding="utf-8")
    return path


def review_notebook(paths: Paths, incident_id: int):
    """The review notebook of ``incident_id``, its parameters filled in."""
    return parameterized(notebook_path(REVIEW), review_parameters(paths, incident_id))


def as_text(notebook) -> str:
    """A notebook as the .ipynb file's text."""
    import nbformat

    return nbformat.writes(notebook)


def write(notebook, path: Path) -> Path:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def write_review(paths: Paths, incident_id: int, output: Path, run: bool = False) -> list[Path]:
    """The review notebook of ``incident_id`` at ``output``; with ``run``, also the executed copy
    (``NAME.executed.ipynb``) and its HTML export (``NAME.html``) beside it."""
    notebook = review_notebook(paths, incident_id)
    written = [write(notebook, output)]
    if run:
        executed = execute(notebook)
        written.append(write(executed, output.with_suffix(".executed.ipynb")))
        written.append(export_html(executed, output.with_suffix(".html")))
    return written


def lab_command(directory: Path = NOTEBOOKS, port: int = LAB_PORT) -> list[str]:
    """JupyterLab on 127.0.0.1 with ``directory`` as its root, started by this interpreter (as
    root too, which JupyterLab refuses unless told: a container or CI often runs as root)."""
    as_root = ["--allow-root"] if os.geteuid() == 0 else []
    return [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            f"--ServerApp.root_dir={directory}", *as_root]


def open_lab(paths: Paths, port: int = LAB_PORT) -> None:
    """Become JupyterLab on the notebooks (this process is replaced, so stopping it stops the
    server); its kernels see this workbench's ledger, data and policy through the environment."""
    require("jupyterlab")
    env = {**os.environ, **paths.environment(), "PYTHONPATH": str(ROOT)}
    command = lab_command(notebook_path(REVIEW).parent, port)
    os.execve(command[0], command, env)
