"""Fixtures of the hypothesis tests: a samples store, a policy directory with the shipped
hypothesis rules and a routing policy written per test, and recorded Ollama servers."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from ledger.samples import SampleStore
from policies.loader import load_policy
from tests.hypotheses.recorded import MODEL, RecordedOllama
from tests.hypotheses.seed import NOW
from tests.support import ROOT, free_port


@pytest.fixture
def store(tmp_path):
    return SampleStore(tmp_path / "samples", now=lambda: NOW)


@pytest.fixture
def recorded():
    """recorded(answers) -> a started RecordedOllama, closed after the test."""
    servers = []

    def start(answers):
        servers.append(RecordedOllama(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def provider(url: str, model: str = MODEL, privacy: str = "local", **more) -> dict:
    return {"host": url, "model": model, "privacy": privacy, "timeout": "60s", **more}


def down() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def policy_with(tmp_path):
    """policy_with(providers, route) -> the shipped policy (rules, hypothesis rules) with this
    routing: ``providers`` by name, ``route`` the hypothesis task's route."""

    def write(providers: dict, route: dict, **routing):
        directory = tmp_path / "policy"
        directory.mkdir(exist_ok=True)
        shutil.copy(ROOT / "policies" / "hypotheses.yaml", directory)
        (directory / "routing.yaml").write_text(yaml.safe_dump({"providers": providers,
                                                                "routes": {"hypothesis": route}, **routing}))
        return load_policy(directory)

    return write


@pytest.fixture
def incident(engine, store):
    """The server-errors case written into the ledger: (engine, store, incident id)."""
    from tests.hypotheses.seed import load_case, seed

    case, _ = load_case(ROOT / "tests" / "hypotheses" / "cases" / "server-errors")
    return engine, store, seed(case, engine, store)


VALID = json.dumps({"hypotheses": [{"id": "target-itself", "title": "t", "explanation": "The process fails.",
                                    "confidence": 0.6, "evidence_ids": ["finding:1"]}]})
