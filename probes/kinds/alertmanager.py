"""Alertmanager probe: pull the alerts it holds (GET /api/v2/alerts) into alert events; every
alert listed is firing."""

from __future__ import annotations

import time

from policies.jsondoc import holds_nul, parse_json
from policies.schema import AlertmanagerTarget
from probes.alerts import PayloadRejected, parse_api_alerts
from probes.context import ProbeContext, ProbeResult, observe
from probes.kinds.http import get_api


async def run(target: AlertmanagerTarget, ctx: ProbeContext):
    started_at = ctx.now()
    t0 = time.perf_counter()
    params = [("active", "true"), ("silenced", _flag(target.include_silenced)),
              ("inhibited", _flag(target.include_inhibited))] + [("filter", m) for m in target.filter]
    answer = await get_api(target, ctx, started_at, t0, target.url.rstrip("/") + "/api/v2/alerts", params,
                           "alertmanager")
    if isinstance(answer, ProbeResult):
        return answer
    reached = {"CONNECTED": True, "RESPONSE_TIME": answer.elapsed}
    try:
        alerts = parse_api_alerts(_document(answer.status, answer.body))
    except PayloadRejected as exc:
        return observe(target, started_at, answer.elapsed, reached, status=answer.status,
                       error=f"alertmanager: {exc}", secrets=answer.secrets)
    return observe(target, started_at, answer.elapsed, {**reached, "ALERT_COUNT": len(alerts)},
                   status=answer.status, secrets=answer.secrets, alerts=alerts)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _document(status: int, body: bytes) -> object:
    """The JSON answer of a 200; Alertmanager's own message otherwise (a bad filter is a 400
    whose body is a JSON string)."""
    try:
        doc = parse_json(body)
    except ValueError:
        snippet = body[:120].decode("utf-8", errors="replace").strip()
        raise PayloadRejected(f"HTTP {status}, not a JSON answer: {snippet!r}") from None
    if status != 200:
        message = doc.get("message", doc) if isinstance(doc, dict) else doc
        raise PayloadRejected(f"HTTP {status}: {message}")
    if holds_nul(doc):
        raise PayloadRejected("the answer holds a NUL character (\\u0000), which the ledger cannot store")
    return doc
