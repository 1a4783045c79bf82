"""Fuzzing the loader: random YAML documents and random mutations of the shipped policy files
go through load_policy, which returns a policy or raises PolicyError, never another exception;
every problem is one line, and none is an unexpected error (a check that raised where it
should have said what is wrong)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.errors import PolicyError
from policies.loader import DEFAULT_DIR, FILES, UNEXPECTED, load_policy
from tests.hostile import mutations

SHIPPED = {name: (DEFAULT_DIR / name).read_text() for name in FILES if (DEFAULT_DIR / name).exists()}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = sorted({"targets", "rules", "services", "noise", "actions", "recommend", "providers", "routes", "refinement",
               "evidence", "name", "kind", "service", "interval", "timeout", "url", "conditions", "parent", "window",
               "for", "summary", "correlation_key", "labels", "by", "series", "above", "below", "target",
               "signature", "signatures", "pattern", "path", "chain", "host", "model", "privacy", "runner", "argv",
               "message", "risk", "postures", "parameters", "id", "when", "title", "explanation", "confidence",
               "samples_retention", "policy_reload_interval", "demo", "port", "allow_empty"})
KINDS = ["http", "tcp", "dns", "tls", "host", "prometheus", "alertmanager", "logs", "threshold", "latency",
         "errors", "traffic", "saturation", "absence", "log_signature", "webhook", "command", "notify"]
HOSTILE_VALUES = ["99999999999d", "{window:.1f}", "{value[0]}", "{labels[nope]}", "[STATUS] == 200", "0s", "5m",
                  "http://127.0.0.1:9/", "a\nb", "\u2028", "x" * 300, *KINDS]

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(HOSTILE_VALUES))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
                      max_leaves=30)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=4).map(
    lambda doc: yaml.safe_dump(doc, allow_unicode=True))


def assert_loads_or_says_why(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_policy(tmp)
        except PolicyError as exc:
            shown = [str(p) for p in exc.problems]
            assert shown and all("\n" not in p and "\r" not in p for p in shown), shown
            assert not [p for p in shown if UNEXPECTED in p], shown


@FUZZ
@given(name=st.sampled_from(sorted(FILES)), text=documents)
def test_random_documents_load_or_say_why(name, text):
    assert_loads_or_says_why({name: text})


@FUZZ
@given(mutation=mutations(SHIPPED))
def test_mutated_shipped_files_load_or_say_why(mutation):
    name, text = mutation
    assert_loads_or_says_why({**SHIPPED, name: text})
