"""`workbench mcp` against a ledger with real activity: a real worker probes the demo service,
which fails and recovers (an incident opened and resolved, its hypotheses drafted), and tails a
log file; the MCP SDK's own client, over stdio, lists the tools and calls each. A secret the
policy references, placed in an incident's evidence by a writer that did not mask it, never
appears in an answer; a long answer is cut with a note; a tool the policy stops allowing is
refused; every call is in the ledger."""

from __future__ import annotations

import json
import shutil
import sys

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from ledger import queries
from ledger.db import open_ledger, sqlite_url, utcnow, write_session
from ledger.repo import incidents
from policies.schema import ASSISTANT_TOOLS
from tests.integration.conftest import WorkerProcess
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.integration
SECRET = "s3cr3t-shop-token-4242"


def test_assistants_read_everything_and_nothing_secret(tmp_path, policy_dir, demo_target):
    log = tmp_path / "shop.log"
    log.write_text("")
    policy = policy_dir(f"""
targets:
  - {{name: shop-web, kind: http, service: shop, url: "{demo_target.url}", interval: 1s, failure_threshold: 2,
     success_threshold: 2, conditions: ["[STATUS] == 200"], headers: {{Authorization: "Bearer ${{SHOP_TOKEN}}"}}}}
  - {{name: shop-log, kind: logs, service: shop, path: "{log}", interval: 1s,
     signatures: [{{name: timeout, pattern: "timed out"}}]}}
""", "mcp: {max_answer_bytes: 16384}\n")
    shutil.copy(ROOT / "policies" / "hypotheses.yaml", policy)
    env = {"SHOP_TOKEN": SECRET}
    data = tmp_path / "var"
    worker = WorkerProcess(policy, data, tmp_path / "worker.log", env=env).start()
    engine = open_ledger(sqlite_url(data))  # masks nothing: a writer that did not know the secret
    try:
        demo_target.fault("down")
        incident = wait_until(lambda: next(iter(queries.list_incidents(engine, services=["shop"])), None),
                              "an incident of shop")
        log.write_text("".join(f"12:00:{n:02d} upstream timed out after 5s\n" for n in range(60)))
        demo_target.fault("none")
        wait_until(lambda: queries.incident_detail(engine, incident.id).resolved_at, "the incident to resolve",
                   attempts=600)
    finally:
        worker.stop()
    with write_session(engine) as session:
        spec = incidents.FindingSpec(rule="rule:shop-errors", target="shop-web", service="shop", severity="warning",
                                     summary=f"token {SECRET} leaked", correlation_key="shop/shop-web")
        incidents.open_finding(session, spec, [incidents.RuleEvidence(f"query with {SECRET}",
                                                                      {"query": f"x{{token={SECRET!r}}}"}, utcnow())],
                               utcnow())
    leaked = next(i.id for i in queries.list_incidents(engine) if i.resolved_at is None)

    calls = {
        "list_incidents": {"state": "all"},
        "get_incident": {"incident_id": incident.id},
        "get_evidence": {"incident_id": leaked},
        "golden_signals": {"service": "shop", "minutes": 30},
        "recent_log_lines": {"target": "shop-log", "limit": 5},
        "get_hypotheses": {"incident_id": incident.id},
        "changes_around": {"at": incident.opened_at.isoformat(), "minutes": 10, "service": "shop"},
    }
    listed, answers = anyio.run(ask, policy, data, env, calls)
    assert listed == list(ASSISTANT_TOOLS)
    for name, (error, text) in answers.items():
        assert not error, (name, text)
        assert SECRET not in text, name
    body = {name: json.loads(text) for name, (_, text) in answers.items()}
    assert {i["id"] for i in body["list_incidents"]["incidents"]} == {incident.id, leaked}
    assert body["get_incident"]["state"] == "resolved" and body["get_incident"]["findings"][0]["target"] == "shop-web"
    assert [e["summary"] for e in body["get_evidence"]["evidence"]] == ["query with ***"]
    assert body["golden_signals"]["signals"]["latency"]["unit"] == "ms"
    assert body["recent_log_lines"]["lines"] == [f"12:00:{n:02d} upstream timed out after 5s" for n in range(55, 60)]
    assert body["get_hypotheses"]["draft"][0]["id"] == "unreachable", answers["get_hypotheses"][1]
    assert [i["id"] for i in body["changes_around"]["incidents"]] == [incident.id, leaked]
    assert body["changes_around"]["silences"] == [] == body["changes_around"]["deploys"]
    assert all(len(text.encode()) <= 16384 for _, text in answers.values())

    (policy / "settings.yaml").write_text("mcp: {tools: [list_incidents, get_hypotheses], max_answer_bytes: 1024}\n")
    listed, answers = anyio.run(ask, policy, data, env, {"recent_log_lines": {"target": "shop-log"},
                                                         "get_incident": {"incident_id": incident.id},
                                                         "get_hypotheses": {"incident_id": incident.id}})
    assert listed == ["list_incidents", "get_hypotheses"]
    assert answers["recent_log_lines"][0] and "not allowed" in answers["recent_log_lines"][1]
    cut = json.loads(answers["get_hypotheses"][1])
    assert len(answers["get_hypotheses"][1].encode()) <= 1024 and cut["cut"].startswith("answer cut to 1024 bytes"), cut

    recorded = queries.assistant_calls(engine, 100)
    assert len(recorded) == len(calls) + 3
    assert {(c.tool, c.outcome) for c in recorded} >= {("recent_log_lines", "refused"), ("get_incident", "refused"),
                                                       ("golden_signals", "answered")}
    assert all(c.caller.startswith("mcp") and SECRET not in json.dumps(c.arguments) for c in recorded)
    assert next(c for c in recorded if c.tool == "get_hypotheses" and c.detail).detail.startswith("answer cut")
    engine.dispose()


async def ask(policy, data, env, calls: dict) -> tuple[list[str], dict[str, tuple[bool, str]]]:
    """The tools `workbench mcp` lists, and each call's (is an error, text), through the SDK's client."""
    server = StdioServerParameters(command=sys.executable, args=["-m", "app.cli", "--policy", str(policy),
                                                                 "--data", str(data), "mcp"],
                                   env={"PATH": "/usr/bin:/bin", **env}, cwd=str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = [tool.name for tool in (await session.list_tools()).tools]
        answers = {}
        for name, arguments in calls.items():
            result = await session.call_tool(name, arguments)
            answers[name] = (result.is_error, "".join(c.text for c in result.content))
    return listed, answers
