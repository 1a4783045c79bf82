"""What the notification tests share: a policy with a channels.yaml, incidents opened and resolved
through the repository at given times, and one pass of planning and delivery as the worker runs it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlmodel import col, select

from ledger.db import read_session, write_session
from ledger.repo import incidents
from ledger.tables import Notification
from notifications.outbox import Delivered, deliver_due
from notifications.plan import plan
from policies.loader import Policy, load_policy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def channels_policy(directory: Path, channels_yaml: str, **files: str) -> Policy:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "targets.yaml").write_text("targets: []\n")
    (directory / "channels.yaml").write_text(channels_yaml)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return load_policy(directory)


def open_incident(engine, service: str = "shop", severity: str = "critical", at: datetime = NOW,
                  target: str | None = None, category: str = "availability") -> int:
    target = target or f"{service}-web"
    spec = incidents.FindingSpec(rule="probe:http", target=target, service=service, severity=severity,
                                 summary=f"{target} failing: [STATUS] == 200 -> got 503",
                                 correlation_key=f"{service}/{target}",
                                 labels={"kind": "http", "category": category})
    with write_session(engine) as session:
        return incidents.open_finding(session, spec, [], at).incident_id


def resolve(engine, incident_id: int, at: datetime) -> None:
    with write_session(engine) as session:
        incidents.transition(session, incident_id, "resolved", "alice", "fixed", at)


def outbox(engine) -> list[Notification]:
    with read_session(engine) as session:
        return list(session.exec(select(Notification).order_by(col(Notification.id))))


def run_pass(engine, policy: Policy, at: datetime, env: dict | None = None) -> Delivered:
    """Plan, then deliver, with the clock standing at ``at``."""
    plan(engine, policy, at)

    async def deliver():
        async with aiohttp.ClientSession(trust_env=False) as client:
            return await deliver_due(engine, policy.channels, env or {}, client, at)

    return asyncio.run(deliver())
