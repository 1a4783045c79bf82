"""Routing decisions another system logged, imported from JSON Lines into a real ledger and
compared with the declared policy: invalid lines reported by number, a second import adds nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hypotheses.errors import ImportFailed
from hypotheses.imports import import_decisions
from ledger import queries
from policies.routing import RoutingFile

ROUTING = RoutingFile.model_validate({
    "providers": {"local": {"host": "http://127.0.0.1:11434", "model": "m", "privacy": "local"},
                  "backup": {"host": "http://127.0.0.1:11435", "model": "m", "privacy": "local",
                             "cost_per_token": 0.5},
                  "cloud": {"host": "https://llm.example.com", "model": "m", "privacy": "remote"}},
    "routes": {"hypothesis": {"chain": ["local", "backup"], "privacy": "local"},
               "summary": {"chain": ["local", "cloud"], "privacy": "any"}},
})

LINES = [
    {"ts": "2026-03-01T10:00:00Z", "task": "hypothesis", "actual": "local", "declared": "local", "request_id": "r1",
     "tokens": 300, "latency_ms": 812.5},
    {"ts": "2026-03-01T10:05:00+02:00", "task": "hypothesis", "actual": "backup", "declared": "local",
     "request_id": "r2", "tokens": 10},
    "not json {",
    {"ts": "2026-03-01T10:10:00", "task": "hypothesis", "actual": "cloud", "gateway": "edge-1"},
    ["a", "list"],
    {"ts": "2026-03-01T10:15:00Z", "task": "summary", "actual": "gpt-x"},
    {"ts": "yesterday", "task": "summary", "actual": "local"},
    {"ts": "2026-03-01T10:20:00Z", "task": "translate", "actual": "local", "request_id": "r5"},
    {"ts": "2026-03-01T10:25:00Z", "task": "summary", "actual": "cloud", "tokens": -3},
    {"ts": "2026-03-01T10:30:00Z", "task": "summary"},
]


def jsonl(lines) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode() + b"\n\n"


def test_valid_lines_are_imported_and_compared_with_the_policy(engine):
    report = import_decisions(engine, jsonl(LINES), "gateway.jsonl", ROUTING)
    assert [n for n, _ in report.invalid] == [3, 5, 7, 9, 10]
    reasons = dict(report.invalid)
    assert reasons[3].startswith("not JSON") and reasons[5] == "not a JSON object"
    assert reasons[7].startswith("ts: ") and reasons[9].startswith("tokens: ") and reasons[10].startswith("actual: ")
    assert (report.valid, report.imported, report.already_imported) == (5, 5, 0)

    rows = {d.request_id or d.actual: d for d in queries.routing_decisions(engine)}
    assert all(d.source == "import" and d.origin == "gateway.jsonl" for d in rows.values())
    assert (rows["r1"].reason, rows["r1"].route, rows["r1"].expected, rows["r1"].tokens) == \
        ("none", ["local", "backup"], "local", 300)
    assert rows["r1"].latency_ms == 812.5
    assert (rows["r2"].reason, rows["r2"].cost) == ("failover", 5.0)
    assert rows["r2"].at == datetime(2026, 3, 1, 8, 5, tzinfo=UTC)
    assert "it declared local and used backup" in rows["r2"].detail
    assert rows["cloud"].reason == "privacy" and rows["cloud"].at == datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
    assert (rows["gpt-x"].reason, rows["gpt-x"].detail) == ("off-policy", "gpt-x is not a provider in routing.yaml")
    assert rows["r5"].reason == "undeclared" and rows["r5"].route == []


def test_importing_the_same_file_twice_imports_nothing_new(engine):
    first = import_decisions(engine, jsonl(LINES), "gateway.jsonl", ROUTING)
    again = import_decisions(engine, jsonl(LINES), "gateway-copy.jsonl", ROUTING)
    assert (first.imported, again.imported, again.already_imported) == (5, 0, 5)
    assert len(queries.routing_decisions(engine)) == 5
    more = import_decisions(engine, jsonl([LINES[0], {**LINES[0], "request_id": "r9"}]), "next.jsonl", ROUTING)
    assert (more.imported, more.already_imported) == (1, 1)


def test_a_file_that_is_not_text_is_refused_with_one_line(engine):
    with pytest.raises(ImportFailed, match=r"gateway.jsonl is not UTF-8 text \(byte 0\)"):
        import_decisions(engine, b"\xff\xfe{}", "gateway.jsonl", ROUTING)
