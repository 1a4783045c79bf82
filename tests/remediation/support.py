"""What the remediation tests share: a policy directory written from YAML, an incident opened
through the repository, and one remediation pass of the worker run at a given time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from ledger.db import write_session
from ledger.repo import incidents
from policies.loader import Policy, load_policy
from probes.context import ProbeClient, ProbeContext
from remediation import executor

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "k" * 40  # an approval signing key given through the environment

SHOP_TARGET = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    timeout: 2s
    conditions: ["[STATUS] == 200"]
"""

FAULT_OFF = """
actions:
  - id: fault-off
    runner: {{kind: webhook, method: POST, url: "http://127.0.0.1:{port}/fault?mode=none"}}
    risk: {risk}
    requires_approval: {approval}
    cooldown: 10m
    max_attempts: 2
    postures: [demo]
    timeout: 5s
    enabled: {enabled}
"""


def write_policy(directory: Path, *, targets: str = "targets: []\n", actions: str | None = None,
                 rules: str | None = None, settings: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("targets.yaml", targets), ("actions.yaml", actions), ("rules.yaml", rules),
                       ("settings.yaml", settings)):
        if text is not None:
            (directory / name).write_text(text)
    return directory


def policy(directory: Path, **files) -> Policy:
    return load_policy(write_policy(directory, **files))


def fault_off(port: int, *, risk: str = "containment", approval: bool = True, enabled: bool = True) -> str:
    return FAULT_OFF.format(port=port, risk=risk, approval=str(approval).lower(), enabled=str(enabled).lower())


def open_incident(engine, target: str = "shop-web", service: str = "shop", at: datetime = NOW,
                  category: str = "availability", rule: str = "probe:http") -> int:
    spec = incidents.FindingSpec(rule=rule, target=target, service=service, severity="critical",
                            summary=f"{target} failing: [STATUS] == 200 -> got 503",
                            correlation_key=f"{service}/{target}", labels={"kind": "http", "category": category})
    with write_session(engine) as session:
        return incidents.open_finding(session, spec, [], at).incident_id


def run_pass(engine, policy: Policy, data_dir: Path, at: datetime, env: dict | None = None) -> executor.PassOutcome:
    """One remediation pass as the worker runs it, its clock standing at ``at``."""
    async def once():
        ctx = ProbeContext(ProbeClient(10), engine=engine)
        try:
            return await executor.run_pass(engine, policy, data_dir, ctx, env={"WORKBENCH_APPROVAL_KEY": KEY,
                                                                                **(env or {})}, now=lambda: at)
        finally:
            await ctx.aclose()

    return asyncio.run(once())
