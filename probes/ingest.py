"""Alert ingest: an Alertmanager webhook delivery becomes alert events in the ledger. The
payload and what it changed commit in one transaction before the worker answers 2xx, so an
accepted payload survives a worker killed right after answering."""

from __future__ import annotations

import hmac
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ledger.db import utcnow, write_session
from ledger.repo import alerts
from probes.alerts import PayloadRejected, parse_webhook

SOURCE = "alertmanager-webhook"
KEEP_REJECTED_BYTES = 65_536
# Alerts folded in by one write transaction: a few hundred milliseconds of holding the write lock
ALERTS_PER_TRANSACTION = 1_000


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
    return ingest_batch(engine, [body])[0]


def ingest_batch(engine: Engine, bodies: list[bytes]) -> list[IngestResult]:
    """Payloads that arrived together: each is validated on its own (a bad one is refused and
    kept as such, the others go on), kept, and the accepted ones' alerts are folded in, in the
    order received. Validation happens before the write lock; the repository masks what it
    keeps. The payloads and their first ALERTS_PER_TRANSACTION alerts commit together; the
    rest of a large delivery commits in transactions of that many alerts each, so that other
    writers and readers get their turn in between. Every transaction commits before any
    payload is answered: a worker stopped part-way answered nothing, the sender delivers again,
    and what was committed comes back as duplicates."""
    now = utcnow()
    parsed: list = []  # each payload's alert events, or why it was refused
    for body in bodies:
        try:
            parsed.append(parse_webhook(body))
        except PayloadRejected as exc:
            parsed.append(exc)
    kept = [_kept(body[:KEEP_REJECTED_BYTES] if isinstance(events, PayloadRejected) else body)
            for body, events in zip(bodies, parsed)]
    accepted = [event for events in parsed if not isinstance(events, PayloadRejected) for event in events]
    chunks = [accepted[i:i + ALERTS_PER_TRANSACTION] for i in range(0, len(accepted), ALERTS_PER_TRANSACTION)]
    outcomes: list[str] = []
    for n, chunk in enumerate(chunks or [[]]):
        with write_session(engine) as session:
            if n == 0:
                alerts.add_ingest_payloads(session, SOURCE, [
                    (text, str(events), 0) if isinstance(events, PayloadRejected) else (text, None, len(events))
                    for events, text in zip(parsed, kept)], now)
            outcomes += alerts.record_alerts(session, chunk, now)
    told = iter(outcomes)
    results = []
    for events in parsed:
        if isinstance(events, PayloadRejected):
            results.append(IngestResult(400, str(events)))
        else:
            results.append(IngestResult(200, "accepted", dict(Counter(next(told) for _ in events))))
    return results


def _kept(body: bytes) -> str:
    """What the ledger keeps of a payload (the repository masks its secrets): no NUL character,
    which PostgreSQL text cannot hold."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
