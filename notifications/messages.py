"""What a notification says: the JSON body a webhook receives (documented in docs/notifications.md)
and the text the other channels show, made from the same payload."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from ledger.tables import ActionRequest, Incident

VERSION = 1
BUTTONS = {"approval": (("approve", "Approve"), ("reject", "Reject")), "acknowledge": (("ack", "Acknowledge"),)}


def incident_link(app_url: str, incident_id: int) -> str:
    return f"{app_url}/?incident={incident_id}"


def incident_part(incident: Incident, app_url: str) -> dict:
    return {"id": incident.id, "title": incident.title, "state": incident.state, "severity": incident.severity,
            "service": incident.service, "opened_at": _iso(incident.opened_at),
            "resolved_at": _iso(incident.resolved_at), "acknowledged_by": incident.acknowledged_by,
            "link": incident_link(app_url, incident.id)}


def group_payload(category: str, incidents: list[Incident], resolved: list[Incident], group: dict, route: str,
                  app_url: str) -> dict:
    """A route's notification of one group: its firing incidents, and those resolved since the last one."""
    firing = [incident_part(i, app_url) for i in incidents]
    done = [incident_part(i, app_url) for i in resolved]
    first = (firing or done)[0]
    if category == "firing":
        title = f"[{first['severity'].upper()}] {first['title']}" if len(firing) == 1 else \
            f"[FIRING:{len(firing)}] {', '.join(sorted({i['service'] for i in firing}))}"
    else:
        title = f"[RESOLVED] {first['title']}" if len(done) == 1 else f"[RESOLVED:{len(done)}] incidents"
    lines = [f"#{i['id']} {i['severity']} {i['state']}: {i['title']} ({i['service']})" for i in firing]
    lines += [f"#{i['id']} resolved: {i['title']} ({i['service']})" for i in done]
    return {"version": VERSION, "category": category, "status": "firing" if firing else "resolved", "title": title,
            "summary": "\n".join(lines), "link": first["link"], "incident": first, "incidents": firing,
            "resolved": done, "group": group, "route": route}


def escalation_payload(incident: Incident, step: int, app_url: str, route: str) -> dict:
    part = incident_part(incident, app_url)
    return {"version": VERSION, "category": "escalation", "status": "firing",
            "title": f"[ESCALATED] {incident.title}", "summary": f"#{incident.id} {incident.severity} "
            f"{incident.state}: {incident.title} ({incident.service}) is not acknowledged (escalation step "
            f"{step + 1})", "link": part["link"], "incident": part, "incidents": [part], "resolved": [],
            "group": {"incident": str(incident.id)}, "route": route, "step": step}


def approval_payload(request: ActionRequest, incident: Incident, app_url: str) -> dict:
    part = incident_part(incident, app_url)
    return {"version": VERSION, "category": "approval", "status": "pending",
            "title": f"[APPROVAL] {request.action} on incident #{incident.id}",
            "summary": f"Action request #{request.id}: {request.action} ({request.risk}) on #{incident.id} "
                       f"{incident.title}\nWhy: {request.reason}\nRuns: {request.plan}\n"
                       f"Decide by {_iso(request.expires_at)}",
            "link": f"{app_url}/approvals", "incident": part, "incidents": [part], "resolved": [],
            "request": {"id": request.id, "action": request.action, "risk": request.risk, "plan": request.plan,
                        "reason": request.reason, "expires_at": _iso(request.expires_at)}}


def meta_payload(title: str, summary: str, app_url: str) -> dict:
    return {"version": VERSION, "category": "meta", "status": "firing", "title": f"[WORKBENCH] {title}",
            "summary": summary, "link": f"{app_url}/notifications", "incident": None, "incidents": [],
            "resolved": []}


def test_payload(channel: str, app_url: str) -> dict:
    return {"version": VERSION, "category": "test", "status": "test", "title": "[TEST] SRE Workbench",
            "summary": f"A test notification to channel {channel}: it works.", "link": app_url, "incident": None,
            "incidents": [], "resolved": []}


def text(payload: dict) -> str:
    """The notification as plain text: title, summary, link."""
    return f"{payload['title']}\n{payload['summary']}\n{payload['link']}"


def buttons(payload: dict) -> list[tuple[str, str, str]]:
    """(verb, label, nonce) of the buttons the payload carries for channels that take answers."""
    return [(verb, label, payload["nonces"][purpose]) for purpose, pairs in BUTTONS.items()
            if purpose in payload.get("nonces", {}) for verb, label in pairs]


def digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
