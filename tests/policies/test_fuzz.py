"""Fuzzing the loader: random YAML documents and random mutations of the shipped policy files
go through load_policy, which returns a policy or raises PolicyError, never another exception;
every problem is one line, and none is an unexpected error (a check that raised where it
should have said what is wrong)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.errors import PolicyError
from policies.loader import DEFAULT_DIR, FILES, UNEXPECTED, load_policy

SHIPPED = {name: (DEFAULT_DIR / name).read_text() for name in FILES}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values known to have broken a check, or close to what does: huge, infinite and tiny durations,
# templates that format a string as a number, recursive and undefined aliases, deep nesting,
# tags PyYAML refuses to build, numbers past Python's int-to-text limit, control characters.
HOSTILE_TEXT = [
    "99999999999d", "1e400", ".inf", "-.inf", ".nan", "0.0000001ms", "-5s", "9" * 400, "9" * 5000, "0", "-1", "~",
    "true", "{}", "[]", "[[[[[[", "'{window:.1f}'", "'{value[0]}'", "'{labels.x}'", "'{labels[nope]}'",
    "'{value.real}'", "'{}'", "'{threshold:%}'", "&a [*a]", "*nowhere", "!!python/object:os.system", "!!binary x",
    "'a\\nb'", '"\\u2028"', '"\\x1b[31m"', "'x' : y : z", "2001-12-14", "0x1F", "0o17", "1_000", "&x\n  - *x",
    "[" * 200 + "]" * 200, "'" + "x" * 300 + "'",
]
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


NUMBER = re.compile(r"\d+")
INTERESTING_NUMBERS = st.sampled_from(["0", "00", "-1", "99999999999", "9" * 400, "1e400", "0.0000001"]) \
    | st.integers(0, 2**70).map(str)


@st.composite
def mutations(draw) -> tuple[str, str]:
    """(file name, text): a shipped policy file with a few of its values or numbers replaced, lines
    dropped, repeated, cut short or shifted, or text inserted."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    lines = SHIPPED[name].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["value", "number", "number", "delete", "repeat", "insert", "cut", "indent"]))
        if edit == "value" and (keyed := [i for i, line in enumerate(lines) if ": " in line]):
            i = draw(st.sampled_from(keyed))
            lines[i] = lines[i].split(": ", 1)[0] + ": " + draw(st.sampled_from(HOSTILE_TEXT) | st.text(max_size=20))
        elif edit == "number" and (numbered := [i for i, line in enumerate(lines) if NUMBER.search(line)]):
            i = draw(st.sampled_from(numbered))
            found = list(NUMBER.finditer(lines[i]))
            at = draw(st.sampled_from(found))
            lines[i] = lines[i][:at.start()] + draw(INTERESTING_NUMBERS) + lines[i][at.end():]
        elif lines:
            i = draw(st.integers(0, len(lines) - 1))
            if edit == "delete":
                del lines[i]
            elif edit == "repeat":
                lines.insert(i, lines[i])
            elif edit == "insert":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + draw(st.text(max_size=10) | st.sampled_from(HOSTILE_TEXT)) + lines[i][at:]
            elif edit == "cut":
                lines = lines[:i]
            elif edit == "indent":
                lines[i] = draw(st.sampled_from(["  ", " ", "\t", ""])) + lines[i].lstrip(" ")
    return name, "\n".join(lines) + "\n"


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
@given(mutation=mutations())
def test_mutated_shipped_files_load_or_say_why(mutation):
    name, text = mutation
    assert_loads_or_says_why({**SHIPPED, name: text})
