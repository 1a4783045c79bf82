"""History brought in from other tools, so that backtests have something to replay and to score
against from the first day: samples from Prometheus (a range query, asked of a Prometheus server
or saved as its JSON answer), labelled as the workbench's prometheus probes label theirs; and past
incidents from an incident tool's export (CSV with a header row, or JSON Lines), recorded as
resolved incidents marked as imported.

Samples: each series of the answer becomes samples named as a prometheus target named ``name``
would name them (its ``metric``, else the series' own name), with the series' labels and the
target's ``service``, ``target`` and ``kind`` (a series label of one of those names is kept as
``exported_...``). A sample the store holds already (same name, labels and time) is not written
again.

Incidents: each row: ``service``, ``title``, ``severity`` (critical, warning or info; ``page``, ``error``,
``high`` and the like are read as Alertmanager's are), ``opened_at`` and ``resolved_at`` (ISO
8601, UTC unless they carry an offset), optional ``labels`` (a JSON object, or ``key=value``
pairs separated by ``;``). Other columns are ignored. A bad row is reported with its line
number; the good ones are imported. Importing the same file again adds nothing: an incident is
known by its service, title and opening time."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine

from ledger.db import as_utc, utcnow, write_session
from ledger.repo import incidents
from ledger.repo.alerts import ALERT_SEVERITIES
from ledger.samples import SampleStore
from policies.errors import WorkbenchError
from policies.jsondoc import holds_nul, parse_json, parse_json_line
from policies.secrets import redact
from probes.context import QueryFailed
from probes.kinds.prometheus import answer_series, series_samples

SEVERITIES = {**ALERT_SEVERITIES, "high": "critical", "sev1": "critical", "sev2": "critical", "p1": "critical",
              "p2": "critical", "medium": "warning", "sev3": "warning", "p3": "warning", "low": "info", "sev4": "info",
              "p4": "info"}


class PastIncidentRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    service: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    severity: str
    opened_at: datetime
    resolved_at: datetime
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        if value.lower() not in SEVERITIES:
            raise ValueError(f"unknown severity {value!r} (use critical, warning or info)")
        return SEVERITIES[value.lower()]

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        if value.lstrip().startswith("{"):
            return parse_json(value)
        pairs = [pair.partition("=") for pair in value.split(";") if pair.strip()]
        if any(not sep or not key.strip() for key, sep, _ in pairs):
            raise ValueError("labels: use a JSON object or key=value pairs separated by ;")
        return {key.strip(): item.strip() for key, _, item in pairs}


@dataclass
class ImportReport:
    imported: int = 0
    already: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def import_incidents(engine: Engine, data: bytes, origin: str, actor: str) -> ImportReport:
    """Rows of ``data`` (CSV when ``origin`` ends in .csv, JSON Lines otherwise) as imported incidents."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{origin} is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise WorkbenchError(f"{origin} holds a NUL character, which the ledger cannot store")
    rows = _csv_rows(text) if origin.lower().endswith(".csv") else _jsonl_rows(text)
    report, valid = ImportReport(), []
    for number, row in rows:
        if isinstance(row, str):  # why the line is no row at all
            report.invalid.append((number, row))
            continue
        try:
            parsed = PastIncidentRow.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "row"
            report.invalid.append((number, f"{where}: {first['msg'].removeprefix('Value error, ')}"))
            continue
        opened, resolved = as_utc(parsed.opened_at), as_utc(parsed.resolved_at)
        if resolved < opened:
            report.invalid.append((number, "resolved_at is before opened_at"))
            continue
        valid.append(incidents.PastIncident(parsed.service, parsed.title, parsed.severity, opened, resolved,
                                            parsed.labels))
    with write_session(engine) as session:
        now = utcnow()
        for past in valid:
            if incidents.import_incident(session, past, origin, actor, now):
                report.imported += 1
            else:
                report.already += 1
    return report


def _csv_rows(text: str) -> list[tuple[int, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"service", "title", "severity", "opened_at", "resolved_at"} - set(reader.fieldnames or ())
    if missing:
        raise WorkbenchError(f"the header row lacks {', '.join(sorted(missing))} (columns: service, title, severity, "
                             "opened_at, resolved_at, and optional labels)")
    rows = []
    for row in reader:
        if None in row:
            rows.append((reader.line_num, "more fields than the header row names"))
        else:
            rows.append((reader.line_num, {k: v for k, v in row.items() if v is not None}))
    return rows


def _jsonl_rows(text: str) -> list[tuple[int, object]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = parse_json_line(line)
        except ValueError as exc:
            rows.append((number, str(exc)))
            continue
        if not isinstance(doc, dict):
            rows.append((number, "not a JSON object"))
        else:
            rows.append((number, "holds a NUL character (\\u0000)" if holds_nul(doc) else doc))
    return rows


MAX_STEPS = 10_000  # points per series in one range query (Prometheus refuses more than 11,000)


@dataclass
class SamplesReport:
    series: int = 0
    samples: int = 0
    written: int = 0  # the rest the store held already


def samples_from_prometheus(url: str, query: str, start: datetime, end: datetime,
                            step: timedelta) -> list[tuple[dict[str, str], list[tuple[datetime, float]]]]:
    """The series of ``query`` from ``start`` to ``end`` every ``step``, asked of the Prometheus at
    ``url`` in ranges of MAX_STEPS points; WorkbenchError saying why not, in one line."""
    found: dict[str, tuple[dict[str, str], list]] = {}
    at = start
    with httpx.Client(timeout=60) as client:
        while at <= end:
            until = min(end, at + step * (MAX_STEPS - 1))
            params = {"query": query, "start": f"{at.timestamp():.3f}", "end": f"{until.timestamp():.3f}",
                      "step": f"{step.total_seconds():g}"}
            try:
                answer = client.get(url.rstrip("/") + "/api/v1/query_range", params=params)
                series = answer_series(answer.status_code, answer.content)
            except httpx.HTTPError as exc:
                raise WorkbenchError(redact(f"cannot query Prometheus at {url}: {type(exc).__name__}: {exc}")) from None
            except QueryFailed as exc:
                raise WorkbenchError(redact(f"Prometheus at {url}: {exc}")) from None
            for labels, points in series:
                found.setdefault(_series_key(labels), (labels, []))[1].extend(points)
            at = until + step
    return list(found.values())


def samples_from_file(data: bytes, origin: str) -> list[tuple[dict[str, str], list[tuple[datetime, float]]]]:
    """The series of a saved /api/v1/query_range (or /api/v1/query) answer."""
    try:
        return answer_series(200, data)
    except QueryFailed as exc:
        raise WorkbenchError(f"{origin}: {exc}") from None


def import_samples(store: SampleStore, series, target: str, service: str, metric: str | None = None) -> SamplesReport:
    samples = series_samples(series, target, service, metric)
    return SamplesReport(series=len(series), samples=len(samples), written=store.write_new(samples))


def _series_key(labels: dict[str, str]) -> str:
    return "\x1f".join(f"{k}={v}" for k, v in sorted(labels.items()))
