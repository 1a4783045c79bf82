"""Alerts from Alertmanager (pushed or pulled) and the payloads pushed to the worker: an alert
episode opens a finding through the incidents repository and recovers it when it resolves.
What an alert or a payload says is masked (secret values and shapes) before anything is kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from ledger.repo.incidents import FindingSpec, close_finding, open_finding
from ledger.repo.rows import get, mask, masked
from ledger.tables import Alert, Evidence, Finding, IngestPayload


@dataclass(frozen=True)
class AlertEvent:
    """One alert as Alertmanager reports it, pulled from its API or pushed by its webhook.
    Deduplicated on (fingerprint, starts_at); ``raw`` keeps what was received."""

    source: str  # alertmanager-webhook | alertmanager-pull
    fingerprint: str
    status: str  # firing | resolved
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    raw: dict


ALERT_SEVERITIES = {"critical": "critical", "page": "critical", "error": "critical", "warning": "warning",
                    "warn": "warning", "info": "info", "none": "info"}


def record_alert(session: Session, event: AlertEvent, now: datetime, origin: str = "webhook") -> str:
    """Fold one alert event into the ledger; return what happened (new, duplicate, resolved, stale).

    An episode is (fingerprint, starts_at). Firing opens a finding (and so an incident);
    resolved recovers it. Redelivery is a duplicate; a firing event for an episode already
    resolved (reordered delivery) is stale and changes nothing. The event is masked first, so
    the alert, its finding, evidence and timeline keep no secret it carried.
    """
    event = AlertEvent(**masked(session, asdict(event)))
    alert = session.exec(select(Alert).where(Alert.fingerprint == event.fingerprint,
                                             Alert.starts_at == event.starts_at)).first()
    if alert is None:
        alert = Alert(
            fingerprint=event.fingerprint, starts_at=event.starts_at, status=event.status, ends_at=event.ends_at,
            alertname=event.labels.get("alertname", "unnamed"), labels=event.labels, annotations=event.annotations,
            generator_url=event.generator_url, source=event.source, origin=origin, first_received=now,
            last_received=now,
            raw=event.raw,
        )
        session.add(alert)
        session.flush()
        if event.status == "resolved":
            return "resolved"  # its firing delivery never came, or comes later and is stale
        finding = open_finding(session, _alert_finding(event), [], now)
        alert.finding_id = finding.id
        _alert_evidence(session, finding, event, now)
        return "new"
    alert.last_received = max(alert.last_received, now)
    alert.deliveries += 1
    if alert.status == "resolved" or event.status == "firing":
        return "stale" if alert.status == "resolved" and event.status == "firing" else "duplicate"
    _resolve_alert(session, alert, event, now, "resolved in Alertmanager")
    return "resolved"


def resolve_unlisted_alerts(session: Session, origin: str, listed: set[tuple[str, datetime]], now: datetime,
                            grace: timedelta) -> int:
    """Alerts a pull has not listed for ``grace`` have resolved: recover their findings; return how many."""
    firing = session.exec(select(Alert).where(Alert.origin == origin, Alert.status == "firing")).all()
    gone = [a for a in firing if (a.fingerprint, a.starts_at) not in listed and a.last_received <= now - grace]
    for alert in gone:
        event = AlertEvent(source=alert.source, fingerprint=alert.fingerprint, status="resolved",
                           starts_at=alert.starts_at, ends_at=now, labels=alert.labels,
                           annotations=alert.annotations, generator_url=alert.generator_url, raw=alert.raw)
        _resolve_alert(session, alert, event, now, f"no longer listed by {origin}")
    return len(gone)


def _resolve_alert(session: Session, alert: Alert, event: AlertEvent, now: datetime, why: str) -> None:
    alert.status, alert.ends_at, alert.raw = "resolved", event.ends_at, event.raw
    if alert.finding_id is not None:
        finding = get(session, Finding, alert.finding_id)
        if finding.recovered_at is None:
            _alert_evidence(session, finding, event, now)
            close_finding(session, finding, now, why, "every alert resolved")


def _alert_finding(event: AlertEvent) -> FindingSpec:
    labels = event.labels
    name = labels.get("alertname", "unnamed")
    service = labels.get("service") or labels.get("job") or "alertmanager"
    summary = event.annotations.get("summary") or event.annotations.get("description") or "firing"
    return FindingSpec(
        rule=f"alert:{name}", target=labels.get("instance") or name, service=service,
        severity=ALERT_SEVERITIES.get(labels.get("severity", "").lower(), "warning"),
        summary=f"{name}: {summary}", correlation_key=f"{service}/alert:{name}", labels=dict(labels),
    )


def _alert_evidence(session: Session, finding: Finding, event: AlertEvent, now: datetime) -> None:
    if finding.incident_id is None:  # silenced: the alert row keeps what was received
        return
    session.add(Evidence(
        incident_id=finding.incident_id, finding_id=finding.id, at=now, kind="alert",
        summary=f"alert {event.labels.get('alertname', 'unnamed')} {event.status} ({event.source})",
        data={"labels": event.labels, "annotations": event.annotations, "starts_at": event.starts_at.isoformat(),
              "ends_at": event.ends_at.isoformat() if event.ends_at else None,
              "generator_url": event.generator_url, "checks": []},
    ))


def add_ingest_payload(session: Session, source: str, body: str, accepted: bool, reason: str | None,
                       alerts: int, now: datetime) -> IngestPayload:
    payload = IngestPayload(received_at=now, source=source, accepted=accepted, reason=reason, alerts=alerts,
                            body=body)
    session.add(mask(session, payload, ("body", "reason")))
    return payload

