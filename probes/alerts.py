"""The alert envelope: Alertmanager alerts, pushed by its webhook (payload version 4) or
pulled from its v2 API, validated and turned into ``AlertEvent``s for the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.repo.alerts import AlertEvent
from policies.errors import WorkbenchError
from policies.jsondoc import holds_nul, parse_json

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)  # Alertmanager's "no end yet"


class PayloadRejected(WorkbenchError):
    """A payload that cannot be ingested; the message is the one-line reason."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)


class _Alert(_Lenient):
    """The fields an alert has in both the webhook payload and the v2 API."""

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str = Field(min_length=1)


class WebhookAlert(_Alert):
    status: Literal["firing", "resolved"]


class WebhookPayload(_Lenient):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str
    alerts: list[WebhookAlert]


class ApiAlertStatus(_Lenient):
    state: str
    silencedBy: list[str] = Field(default_factory=list)
    inhibitedBy: list[str] = Field(default_factory=list)


class ApiAlert(_Alert):
    status: ApiAlertStatus


def parse_webhook(body: bytes) -> list[AlertEvent]:
    """Events of one webhook delivery, or PayloadRejected with the reason in one line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadRejected(f"body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        doc = parse_json(text)
    except ValueError as exc:
        raise PayloadRejected(f"body is not JSON: {str(exc).removeprefix('invalid JSON: ')}") from None
    if "\\u0000" in text and holds_nul(doc):  # the text "\\u0000" escaped (\\\\u0000) is no NUL
        raise PayloadRejected("body holds a NUL character (\\u0000), which the ledger cannot store")
    if isinstance(doc, dict) and "version" in doc and doc["version"] != "4":
        raise PayloadRejected(f"unsupported webhook payload version {doc['version']!r}; expected '4'")
    payload = _validate(WebhookPayload, doc)
    return [_event("alertmanager-webhook", a.status, a, raw) for a, raw in zip(payload.alerts, doc["alerts"])]


def parse_api_alerts(doc: object) -> list[AlertEvent]:
    """Events from GET /api/v2/alerts: every alert returned is firing (active, or silenced/inhibited)."""
    if not isinstance(doc, list):
        raise PayloadRejected(f"expected a JSON array of alerts, got {type(doc).__name__}")
    return [_event("alertmanager-pull", "firing", _validate(ApiAlert, raw, f"alerts[{i}]."), raw)
            for i, raw in enumerate(doc)]


def _validate(model: type[BaseModel], doc: object, prefix: str = ""):
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = prefix + ".".join(str(p) for p in first["loc"]) if first["loc"] or prefix else "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PayloadRejected(f"{where}: {first['msg']}{more}") from exc


def _event(source: str, status: str, alert, raw: dict) -> AlertEvent:
    ends_at = _utc(alert.endsAt, "endsAt") if alert.endsAt else None
    return AlertEvent(
        source=source, fingerprint=alert.fingerprint, status=status, starts_at=_utc(alert.startsAt, "startsAt"),
        ends_at=ends_at if ends_at and ends_at > ZERO_TIME else None, labels=dict(alert.labels),
        annotations=dict(alert.annotations), generator_url=alert.generatorURL, raw=raw,
    )


def _utc(moment: datetime, field: str) -> datetime:
    """``moment`` in UTC (a time without an offset is taken as UTC); PayloadRejected for one that
    has no UTC equivalent, such as 0001-01-01T00:00:00+05:00."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise PayloadRejected(f"{field}: {moment.isoformat()} has no time in UTC") from None
