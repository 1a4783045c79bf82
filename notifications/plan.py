"""Which notifications are due, from what the ledger holds now: planned into the outbox in the same
transaction that updates the notification log, so a restart neither repeats nor forgets one.

- Routes (channels.yaml) take the open incidents whose labels their matchers match, in order:
  the first route that matches takes an incident, unless it says ``continue``. A route groups its
  incidents by ``group_by`` and notifies a group as Alertmanager does: ``group_wait`` after its
  first incident opened, then at most every ``group_interval`` when its incidents changed (one more
  firing, one resolved), and every ``repeat_interval`` while it fires unchanged.
- An incident notified of one category (firing, resolved) is not notified of it again within
  ``debounce`` (a flapping signal reopening incidents with one correlation key).
- Incidents a silence or maintenance window covers, and suppressed ones, are not notified.
- An unacknowledged incident a route with an ``escalation`` takes reaches each step's channels
  ``after`` its opening, the last step again every ``repeat``.
- A pending action request goes to the ``approvals`` channels with Approve and Reject.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger import lifecycle, silences
from ledger.db import write_session
from ledger.lifecycle import RequestStatus
from ledger.repo import incidents as incident_rows
from ledger.repo import notifications as outbox
from ledger.tables import ActionRequest, Finding, Incident, Notification, NotificationGroup, Silence
from notifications import messages
from policies.channels import ANSWERING, ChannelsFile, Route
from policies.loader import Policy

ACKNOWLEDGE_FOR = timedelta(days=1)  # how long an Acknowledge button in a channel works


def plan(engine: Engine, policy: Policy, now: datetime) -> int:
    """Plan what is due into the outbox; return how many notifications were planned."""
    config = policy.channels
    if not config.routes and not config.approvals:
        return 0
    with write_session(engine) as session:
        notifiable = _notifiable(session, now)
        planned = _groups(session, config, notifiable, now)
        planned += _escalations(session, config, notifiable, now)
        planned += _approvals(session, config, now)
    return planned


def labels_of(incident: Incident, findings: list[Finding]) -> dict[str, str]:
    """What routes match: the incident's own fields, then its findings' labels (the first finding's first)."""
    labels: dict[str, str] = {}
    for finding in findings:
        for key, value in {**finding.labels, "rule": finding.rule, "target": finding.target}.items():
            labels.setdefault(key, str(value))
    labels.update(incident=str(incident.id), service=incident.service, severity=incident.severity,
                  state=incident.state, key=incident.correlation_key)
    return labels


def routes_for(config: ChannelsFile, labels: dict[str, str]) -> list[tuple[int, Route]]:
    """The routes that take an incident with ``labels``, in order."""
    taken = []
    for i, route in enumerate(config.routes):
        if all(matcher.matches(labels) for matcher in route.parsed_matchers):
            taken.append((i, route))
            if not route.continue_:
                break
    return taken


def _notifiable(session: Session, now: datetime) -> list[tuple[Incident, dict[str, str]]]:
    """Open incidents with their labels, but those suppressed or covered by a silence in force."""
    in_force = [s for s in session.exec(select(Silence).where(col(Silence.expired_at).is_(None),
                                                              Silence.starts_at <= now))
                if silences.in_force(s, now)]
    found = []
    for incident, findings in incident_rows.open_incidents_with_findings(session):
        labels = labels_of(incident, findings)
        if incident.state != lifecycle.SUPPRESSED and not any(silences.covers(s, labels) for s in in_force):
            found.append((incident, labels))
    return found


def _groups(session: Session, config: ChannelsFile, notifiable: list[tuple[Incident, dict]], now: datetime) -> int:
    members: dict[tuple[int, str], list[Incident]] = defaultdict(list)
    for incident, labels in notifiable:
        for i, route in routes_for(config, labels):
            group = {label: labels.get(label, "") for label in route.group_by}
            members[(i, json.dumps(group, sort_keys=True))].append(incident)
    logs = {(row.route, row.group_key): row for row in session.exec(select(NotificationGroup))}
    recent = _recently_notified(session, config, now)
    planned = 0
    for i, route in enumerate(config.routes):
        name = f"routes[{i}]"
        keys = {key for (j, key) in members if j == i} | {key for (r, key), row in logs.items()
                                                        if r == name and (row.firing or row.notified_at is None)}
        for key in sorted(keys):
            firing = members.get((i, key), [])
            row = logs.get((name, key)) or NotificationGroup(
                route=name, group_key=key, first_at=min((incident.opened_at for incident in firing), default=now))
            planned += _group(session, config, route, name, row, firing, recent, now)
    return planned


def _group(session: Session, config: ChannelsFile, route: Route, name: str, row: NotificationGroup,
           firing: list[Incident], recent: dict[tuple[str, str], set[int]], now: datetime) -> int:
    ids = sorted(incident.id for incident in firing)
    if not row.firing and ids and row.notified_at is not None:  # a group that had ended starts afresh
        row.first_at, row.notified_at = min(incident.opened_at for incident in firing), None
    if row.notified_at is None:
        if not ids:  # its incidents ended before it was notified; a row that ever notified keeps its sequence
            if row in session and row.sequence == 0:
                session.delete(row)
            return 0
        session.add(row)
        if now < row.first_at + route.group_wait:
            return 0
        category, resolved = "firing", []
    else:
        gone = [i for i in row.firing if i not in ids]
        changed = sorted(row.firing) != ids
        if not ((changed and now >= row.notified_at + route.group_interval)
                or (ids and now >= row.notified_at + route.repeat_interval)):
            return 0
        category = "firing" if ids else "resolved"
        resolved = [session.get(Incident, i) for i in gone]
        resolved = [incident for incident in resolved if incident is not None and incident.resolved_at is not None]
        if not ids and not (route.send_resolved and resolved):
            row.firing, row.notified_at = [], now  # the group ended, nothing to say
            session.add(row)
            return 0
    if ids and _debounced(recent, firing, category):
        return 0
    group = json.loads(row.group_key)
    payload = messages.group_payload(category, sorted(firing, key=lambda i: i.id),
                                     resolved, group, name, config.app_url)
    row.sequence += 1
    key = f"{name}:{row.group_key}:{row.sequence}"
    while outbox.planned(session, [key]):  # a group log lost with its row: never reuse a key
        row.sequence += 1
        key = f"{name}:{row.group_key}:{row.sequence}"
    first = (firing or resolved)[0]
    _enqueue(session, config, key=key, channels=route.channels, category=payload["category"], payload=payload,
             now=now, incident_id=first.id, route=name, acknowledge=[i for i in firing if i.acknowledged_at is None])
    row.firing, row.notified_at = ids, now
    session.add(row)
    return 1


def _recently_notified(session: Session, config: ChannelsFile, now: datetime) -> dict[tuple[str, str], set[int]]:
    """(correlation key, category) -> ids of the incidents of that key notified of it within ``debounce``."""
    recent: dict[tuple[str, str], set[int]] = defaultdict(set)
    for key, category, incident_id in session.exec(
            select(Incident.correlation_key, Notification.category, Incident.id)
            .join(Notification, Notification.incident_id == Incident.id)
            .where(col(Notification.at) > now - config.debounce, col(Notification.fallback_of).is_(None))):
        recent[key, category].add(incident_id)
    return recent


def _debounced(recent: dict[tuple[str, str], set[int]], firing: list[Incident], category: str) -> bool:
    """Every incident of the group has a correlation key another incident of which was notified of
    ``category`` within ``debounce``."""
    return all(recent.get((incident.correlation_key, category), set()) - {incident.id} for incident in firing)


def _escalations(session: Session, config: ChannelsFile, notifiable: list[tuple[Incident, dict]],
                 now: datetime) -> int:
    planned = 0
    for incident, labels in notifiable:
        if incident.acknowledged_at is not None:
            continue
        for i, route in routes_for(config, labels):
            policy = config.escalation(route.escalation)
            if policy is None or incident.severity not in policy.severities:
                continue
            due = [j for j, step in enumerate(policy.steps) if now >= incident.opened_at + step.after]
            if not due:
                continue
            step, repeat = due[-1], 0
            last = policy.steps[-1]
            if step == len(policy.steps) - 1 and policy.repeat is not None:
                repeat = int((now - incident.opened_at - last.after) / policy.repeat)
            key = f"escalation:{incident.id}:{route.escalation}:{step}:{repeat}"
            if outbox.planned(session, [key]):
                continue
            payload = messages.escalation_payload(incident, step, config.app_url, f"routes[{i}]")
            _enqueue(session, config, key=key, channels=policy.steps[step].channels, category="escalation",
                     payload=payload, now=now, incident_id=incident.id, route=f"escalations.{policy.name}",
                     acknowledge=[incident])
            planned += 1
    return planned


def _approvals(session: Session, config: ChannelsFile, now: datetime) -> int:
    if not config.approvals:
        return 0
    pending = list(session.exec(select(ActionRequest).where(ActionRequest.status == RequestStatus.PENDING,
                                                            col(ActionRequest.expires_at) > now)))
    keys = {f"approval:{request.id}:{channel}": (request, channel)
            for request in pending for channel in config.approvals}
    done = outbox.planned(session, keys)
    for key, (request, channel) in keys.items():
        if key in done:
            continue
        incident = session.get(Incident, request.incident_id)
        payload = messages.approval_payload(request, incident, config.app_url)
        payload["nonces"] = {"approval": outbox.new_prompt(session, channel=channel, purpose="approval",
                                                           expires_at=request.expires_at, now=now,
                                                           request_id=request.id, incident_id=incident.id)}
        outbox.enqueue(session, key=key, channels=[channel], category="approval", payload=payload,
                       digest=messages.digest(payload), now=now, incident_id=incident.id, request_id=request.id)
    return len(keys) - len(done)


def _enqueue(session: Session, config: ChannelsFile, *, key: str, channels: list[str], category: str, payload: dict,
             now: datetime, incident_id: int, route: str, acknowledge: list[Incident]) -> None:
    """Plan one notification; a firing one to a channel that takes answers carries Acknowledge (when
    it is about one incident nobody has acknowledged)."""
    first = config.channel(channels[0])
    if category in ("firing", "escalation") and len(acknowledge) == 1 and first is not None \
            and first.kind in ANSWERING and config.approvers:
        payload["nonces"] = {"acknowledge": outbox.new_prompt(
            session, channel=first.name, purpose="acknowledge", expires_at=now + ACKNOWLEDGE_FOR,
            now=now, incident_id=acknowledge[0].id)}
    outbox.enqueue(session, key=key, channels=channels, category=category, payload=payload,
                   digest=messages.digest(payload), now=now, incident_id=incident_id, route=route)
