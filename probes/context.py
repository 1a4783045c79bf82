"""What every probe run gets besides its target: the shared client and injected side effects."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from ledger.db import utcnow
from ledger.repo import AlertEvent
from ledger.samples import Sample
from ledger.tables import Observation
from policies.secrets import redact


@dataclass
class ProbeResult:
    """What one probe run gives: the observation for the ledger, series for the samples
    store, and alerts (from Alertmanager) for the alert envelope."""

    observation: Observation
    samples: list[Sample] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)


@dataclass
class ProbeContext:
    client: httpx.AsyncClient
    max_body_bytes: int = 1_048_576
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: Callable[[], datetime] = utcnow
    proc: Path = Path("/proc")


def make_client(max_connections: int) -> httpx.AsyncClient:
    """The one probe client, built once and shared; each probe sets its own deadline."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx.Timeout(30.0),
        headers={"User-Agent": "sre-workbench-probe"},
        trust_env=False,
    )


def observe(target, started_at: datetime, duration_ms: float, values: dict, *, status: int | None = None,
            error: str | None = None, secrets: list[str] = (), samples: list[Sample] = (),
            alerts: list[AlertEvent] = ()) -> ProbeResult:
    """Evaluate the target's conditions over ``values`` and build the observation, redacted."""
    checks = []
    if error is None:
        for condition in target.parsed_conditions():
            result = condition.evaluate(values)
            checks.append({"condition": result.condition, "ok": result.ok,
                           "actual": redact(result.actual, secrets), "text": redact(result.text, secrets)})
    ok = error is None and all(check["ok"] for check in checks)
    if error is None and not ok:
        error = "; ".join(check["text"] for check in checks if not check["ok"])
    stored = {k: v for k, v in values.items() if isinstance(v, (int, float, bool)) and v is not None}
    observation = Observation(
        target=target.name, kind=target.kind, service=target.service, ok=ok, started_at=started_at,
        duration_ms=round(duration_ms, 3), status=status,
        error=redact(error, secrets) if error else None, checks=checks, values=stored,
    )
    return ProbeResult(observation, list(samples), list(alerts))


def failed(target, started_at: datetime, duration_ms: float, reason: str, secrets: list[str] = ()) -> ProbeResult:
    return observe(target, started_at, duration_ms, {}, error=reason, secrets=secrets)


