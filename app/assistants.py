"""``workbench mcp``: what the ledger and the samples store know, as read-only MCP tools for
assistants, over stdio with the official ``mcp`` SDK.

Every tool only reads. Which tools are served is the policy's (``settings.yaml``, ``mcp.tools``,
read again at each call; a policy that no longer loads leaves the last good one in force); a call
to another is refused. Every answer is JSON, masked (the secret values the policy references,
and secret-shaped strings) and cut to ``mcp.max_answer_bytes`` with a note saying what was left
out. Every call, answered, refused or failed, is recorded in the ledger (``assistant_call``:
tool, arguments, caller, bytes).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from app.access import os_user
from app.settings import Paths
from hypotheses.evidence import version_changes
from hypotheses.refine import hypotheses_view
from ledger import db, queries
from ledger.db import write_session
from ledger.repo.assistants import record_call
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from ledger.silences import occurrences
from ledger.trends import read_window
from policies.errors import PolicyError, WorkbenchError
from policies.loader import Policy, load_policy
from policies.schema import ASSISTANT_TOOLS, LogsTarget
from policies.secrets import policy_secrets, redact_data
from policies.selectors import matcher_from_dict
from probes.kinds.logs import latest_lines

MAX_LIMIT = 500
MAX_MINUTES = 7 * 24 * 60
LOG_BYTES = 262_144  # of a log file's end read for its latest lines
NOTE_ROOM = 300  # bytes kept for the note that says what was cut


class Reads:
    """The reads behind the tools, over one workbench's ledger, samples and policy."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.engine = paths.ledger()
        self.store = SampleStore(paths.samples_dir)
        self.rollups = Rollups(self.store)
        self._policy: Policy | None = None

    def policy(self) -> Policy:
        """The policy as it is now; the last one that loaded when it no longer does."""
        try:
            self._policy = load_policy(self.paths.policy_dir)
        except PolicyError:
            if self._policy is None:
                raise
        return self._policy

    def list_incidents(self, state: str = "open", service: str | None = None, limit: int = 50) -> dict:
        if state not in ("open", "resolved", "all"):
            raise ToolError("state is open, resolved or all")
        found = queries.list_incidents(self.engine, services=[service] if service else None,
                                       limit=_bounded(limit, MAX_LIMIT) if state == "all" else MAX_LIMIT * 10)
        kept = [i for i in found if state == "all" or (i.resolved_at is None) == (state == "open")]
        return {"incidents": [i.model_dump(mode="json") for i in kept[:_bounded(limit, MAX_LIMIT)]]}

    def get_incident(self, incident_id: int) -> dict:
        detail = queries.incident_detail(self.engine, incident_id)
        return detail.model_dump(mode="json", exclude={"evidence"}) | {"evidence_count": len(detail.evidence)}

    def get_evidence(self, incident_id: int) -> dict:
        detail = queries.incident_detail(self.engine, incident_id)
        return {"incident": incident_id, "evidence": [e.model_dump(mode="json") for e in detail.evidence]}

    def golden_signals(self, service: str, minutes: int = 60) -> dict:
        now = db.utcnow()
        since = now - timedelta(minutes=_bounded(minutes, MAX_MINUTES))
        trends = read_window(self.rollups, self.engine, self.policy().rules.services, service, since, now,
                             f"{minutes}m")
        return {"service": service, "since": since.isoformat(), "until": now.isoformat(),
                "resolution": trends.resolution,
                "signals": {name: {"title": s.title, "unit": s.unit, "drawn_from": s.note,
                                   "points": [{"at": at.isoformat(), "series": series, "value": value}
                                              for at, series, value in s.current.select("at", "series", "value")
                                              .iter_rows()]}
                            for name, s in trends.signals.items()},
                "bands": [b.model_dump(mode="json") for b in trends.bands]}

    def recent_log_lines(self, target: str, limit: int = 50) -> dict:
        found = next((t for t in self.policy().targets if t.name == target), None)
        if not isinstance(found, LogsTarget):
            raise ToolError(f"{target!r} is not a logs target of the policy")
        try:
            lines = latest_lines(found, _bounded(limit, MAX_LIMIT), LOG_BYTES)
        except Exception as exc:  # the source is another system: its failure is the answer, not a crash
            raise ToolError(f"{target}: {type(exc).__name__}: {exc}") from None
        return {"target": target, "source": found.path or found.loki_url, "lines": lines}

    def get_hypotheses(self, incident_id: int) -> dict:
        return hypotheses_view(self.engine, self.store, self.policy(), incident_id, db.utcnow()).as_json()

    def changes_around(self, at: str, minutes: int = 30, service: str | None = None) -> dict:
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ToolError(f"at: {at!r} is not an ISO 8601 time (2026-03-01T12:00:00Z)") from None
        if moment.tzinfo is None:
            raise ToolError("at needs a time zone (2026-03-01T12:00:00Z)")
        span = timedelta(minutes=_bounded(minutes, MAX_MINUTES))
        since, until = moment - span, moment + span
        incidents = [i for i in queries.incidents_in_window(self.engine, since, until, service=service)
                     if since <= i.opened_at <= until or (i.resolved_at and since <= i.resolved_at <= until)]
        silences = [{"id": s.id, "kind": s.kind, "comment": s.comment, "author": s.author,
                     "matchers": ", ".join(str(matcher_from_dict(m)) for m in s.matchers),
                     "spans": [[start.isoformat(), end.isoformat()] for start, end in occurrences(s, since, until)]}
                    for s in queries.list_silences(self.engine, until, include_expired=True)
                    if occurrences(s, since, until)]
        deploys = [{"at": d.at.isoformat(), "summary": d.summary, **d.labels}
                   for d in version_changes(self.store, service, [], since, until, moment)] if service else []
        return {"since": since.isoformat(), "until": until.isoformat(),
                "incidents": [i.model_dump(mode="json") for i in incidents], "silences": silences,
                "deploys": deploys}


def _bounded(value: int, most: int) -> int:
    return max(1, min(int(value), most))


def bounded_json(data: dict, limit: int) -> tuple[str, str]:
    """``data`` as JSON of at most ``limit`` bytes, and what was cut to fit: the longest lists are
    shortened from their end, and a note (``cut``) says how many items of each are left."""
    text = _dumps(data)
    if len(text.encode()) <= limit:
        return text, ""
    data, notes = dict(data), []
    room = limit - NOTE_ROOM
    for key in sorted((k for k, v in data.items() if isinstance(v, list)), key=lambda k: -len(_dumps(data[k]))):
        items, low, high = data[key], 0, len(data[key])
        while low < high:  # the most items of this list that fit, the others as they are
            middle = (low + high + 1) // 2
            low, high = (middle, high) if len(_dumps({**data, key: items[:middle]}).encode()) <= room else (low, middle - 1)
        if low < len(items):
            data[key] = items[:low]
            notes.append(f"{key}: {low} of {len(items)} shown")
        if len(_dumps(data).encode()) <= room:
            break
    note = f"answer cut to {limit} bytes (mcp.max_answer_bytes): " + "; ".join(notes or ["text shortened"])
    text = _dumps({**data, "cut": note})
    if len(text.encode()) > limit:
        text = _dumps({"cut": note, "text": text[:limit // 2]})
    return text, note


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)


def build_server(paths: Paths) -> MCPServer:
    """The MCP server of the workbench at ``paths``, its tools registered; only those the policy
    allows are listed, and a call to another is refused and recorded."""
    reads = Reads(paths)
    server = _AllowlistServer("sre-workbench", reads, instructions=(
        "Read-only tools over an SRE workbench: its incidents, their evidence and hypotheses, a "
        "service's golden signals, a logs target's latest lines and what changed around a time. "
        "Times are UTC, ISO 8601."))
    docs = {
        "list_incidents": "Incidents, newest first: state open (default), resolved or all; optionally one service.",
        "get_incident": "One incident whole: findings, timeline, recent probe runs (the evidence: get_evidence).",
        "get_evidence": "An incident's evidence: probe checks, a rule's query, window, threshold and value, alerts.",
        "golden_signals": "A service's latency, traffic, errors and saturation over the last minutes, as the "
                          "Trends page draws them, with its incidents, silences and maintenance windows.",
        "recent_log_lines": "The latest lines of a logs target of the policy (a file's end, or Loki).",
        "get_hypotheses": "An incident's root-cause hypotheses: the rules' draft and the model's refinement.",
        "changes_around": "What changed around a time: incidents opened or resolved, silences and maintenance "
                          "windows, and (given a service) deploys seen in its series' labels.",
    }
    for name in ASSISTANT_TOOLS:
        server.tool(name=name, description=docs[name])(_recorded(server, name, getattr(reads, name)))
    return server


def _recorded(server: _AllowlistServer, name: str, read: Callable[..., dict]) -> Callable[..., str]:
    """The tool ``name``: ``read``'s answer as bounded, masked JSON, the call recorded."""

    def tool(*args, ctx: Context, **kwargs) -> str:
        arguments = kwargs
        try:
            data = read(*args, **kwargs)
        except Exception as exc:  # a read that fails is the answer (no such incident, ...), recorded as such
            reason = str(exc) if isinstance(exc, (WorkbenchError, ToolError)) else (
                f"{type(exc).__name__}: {exc}")
            server.record(name, arguments, ctx, "failed", 0, reason)
            raise ToolError(reason) from None
        text, note = bounded_json(redact_data(data, server.secrets()), server.limit())
        server.record(name, arguments, ctx, "answered", len(text.encode()), note)
        return text

    tool.__signature__ = _with_context(read)  # the SDK builds the tool's input schema from it
    tool.__name__ = name
    return tool


def _with_context(read: Callable[..., dict]) -> inspect.Signature:
    signature = inspect.signature(read)
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    return signature.replace(parameters=[*signature.parameters.values(), context], return_annotation=str)


class _AllowlistServer(MCPServer):
    """An MCPServer that lists only the tools the policy allows and refuses (and records) a call
    to any other."""

    def __init__(self, name: str, reads: Reads, **kwargs):
        super().__init__(name, **kwargs)
        self.reads = reads

    def allowed(self) -> set[str]:
        return set(self.reads.policy().settings.mcp.tools)

    def limit(self) -> int:
        return self.reads.policy().settings.mcp.max_answer_bytes

    def secrets(self) -> frozenset[str]:
        return frozenset(policy_secrets(self.reads.policy()))

    async def list_tools(self):
        allowed = self.allowed()
        return [tool for tool in await super().list_tools() if tool.name in allowed]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        if name not in self.allowed():
            self.record(name, arguments, context, "refused", 0, "not among the tools settings.yaml's mcp.tools allows")
            raise ToolError(f"{name}: not allowed (settings.yaml, mcp.tools)")
        return await super().call_tool(name, arguments, context)

    def record(self, tool: str, arguments: dict, ctx: Context | None, outcome: str, size: int, detail: str) -> None:
        with write_session(self.reads.engine) as session:
            record_call(session, at=db.utcnow(), tool=tool, arguments=arguments, caller=_caller(ctx),
                        outcome=outcome, size=size, detail=detail)


def _caller(ctx: Context | None) -> str:
    """The client as it introduced itself, and the OS user running the server."""
    client = None
    try:
        info = ctx.session.client_params.client_info if ctx is not None else None
        client = f"{info.name} {info.version}".strip() if info else None
    except (AttributeError, ValueError):
        pass
    return f"{client or 'an MCP client'} (as {os_user()})"
