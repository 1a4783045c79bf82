"""Alert ingest: an Alertmanager webhook delivery becomes alert events in the ledger. The
payload and what it changed commit in one transaction before the worker answers 2xx, so an
accepted payload survives a worker killed right after answering."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ledger.db import utcnow, write_session
from ledger.repo import alerts
from probes.alerts import PayloadRejected, parse_webhook

SOURCE = "alertmanager-webhook"
KEEP_REJECTED_BYTES = 65_536


@dataclass
class IngestResult:
    status: int
    reason: str  # one line; "accepted" when it was
    outcomes: dict[str, int] = field(default_factory=dict)

    def body(self) -> dict:
        return {"status": "accepted", **self.outcomes} if self.status < 300 else {"error": self.reason}


def authorized(header: str | None, token: str | None) -> bool:
    """No token configured: open (the endpoint listens on loopback only). Else a matching bearer."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def ingest_alertmanager(engine: Engine, body: bytes) -> IngestResult:
    now = utcnow()
    try:
        events = parse_webhook(body)
    except PayloadRejected as exc:
        with write_session(engine) as session:
            alerts.add_ingest_payload(session, SOURCE, _kept(body[:KEEP_REJECTED_BYTES]), False, str(exc), 0, now)
        return IngestResult(400, str(exc))
    outcomes: dict[str, int] = {}
    with write_session(engine) as session:
        alerts.add_ingest_payload(session, SOURCE, _kept(body), True, None, len(events), now)
        for event in events:
            outcome = alerts.record_alert(session, event, now)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return IngestResult(200, "accepted", outcomes)


def _kept(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")  # the repository masks it
