"""An incident's evidence, gathered from the ledger and the samples store into citable items:
its findings and their evidence (probe checks, rule values, alert labels), related incidents
(a parent target's, concurrent ones, earlier ones with the same key), changes (silences and
maintenance windows around its opening) and series that shifted when it opened."""

from __future__ import annotations

import json
import math
import zlib
from datetime import datetime, timedelta

from sqlalchemy import Engine

from hypotheses.models import EvidenceItem
from ledger import queries
from ledger.queries import IncidentDetail, RelatedIncident
from ledger.samples import VERSION_LABELS, SampleStore
from ledger.silences import occurrences
from policies.hypotheses import Gathering
from policies.selectors import matcher_from_dict

RATIO_CAP = 999.0
BUILDUP = timedelta(minutes=5)  # left out of a series' baseline: the minutes just before the opening (at most
# the last sixth of the span looked at before it)


def window(detail: IncidentDetail, gathering: Gathering, now: datetime) -> tuple[datetime, datetime]:
    """[since, until]: from ``before`` ahead of the opening to ``after`` past the resolution
    (an open incident: now)."""
    end = detail.resolved_at + gathering.after if detail.resolved_at else now
    return detail.opened_at - gathering.before, min(end, now)


def ledger_evidence(engine: Engine, detail: IncidentDetail, gathering: Gathering, since: datetime,
                    until: datetime, now: datetime) -> list[EvidenceItem]:
    labels = queries.finding_labels(engine, detail.id)
    return [*finding_items(detail, labels), *evidence_items(detail, labels),
            *related_items(engine, detail, labels, gathering, since, until),
            *change_items(engine, detail, since, until, now)]


def finding_items(detail: IncidentDetail, labels: dict[int, dict]) -> list[EvidenceItem]:
    return [EvidenceItem(id=f"finding:{f.id}", kind="finding", at=f.first_seen, summary=f.summary,
                         labels={**_text(labels.get(f.id, {})), "target": f.target,
                                 "category": labels.get(f.id, {}).get("category") or "other",
                                 "suppressed": "yes" if f.suppressed_by else "no"})
            for f in detail.findings]


def evidence_items(detail: IncidentDetail, labels: dict[int, dict]) -> list[EvidenceItem]:
    items = []
    for e in detail.evidence:
        finding = labels.get(e.finding_id, {})
        common = {k: str(finding[k]) for k in ("target", "service", "category") if finding.get(k)}
        items.append(EvidenceItem(id=f"evidence:{e.id}", kind=e.kind, at=e.at, summary=e.summary,
                                  labels={**common, **EVIDENCE_LABELS.get(e.kind, _scalars)(e.data)}))
    return items


def _probe_labels(data: dict) -> dict[str, str]:
    failed = [check["text"] for check in data.get("checks", []) if not check.get("ok")]
    return {"status": "" if data.get("status") is None else str(data["status"]), "error": data.get("error") or "",
            "failed_checks": "; ".join(failed)}


def _alert_labels(data: dict) -> dict[str, str]:
    annotations = _text(data.get("annotations", {}))
    return {**_text(data.get("labels", {})), **{f"annotation_{k}": v for k, v in annotations.items()}}


def _scalars(data: dict) -> dict[str, str]:
    return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float, bool)) and v is not None}


EVIDENCE_LABELS = {"probe": _probe_labels, "alert": _alert_labels, "rule": _scalars}


def related_items(engine: Engine, detail: IncidentDetail, labels: dict[int, dict], gathering: Gathering,
                  since: datetime, until: datetime) -> list[EvidenceItem]:
    """Incidents of the targets this incident's findings depend on (``parent``), others open in
    the window (``concurrent``) and earlier ones with the same key (``recurrence``; a ``relapse``
    when it was opened by the same rule and resolved within ``before`` of this opening: the same
    failure back minutes after it was fixed, rather than another failure that shares the key)."""
    parents = {str(f["parent"]) for f in labels.values() if f.get("parent")}
    related: dict[int, tuple[RelatedIncident, str]] = {}
    # a recurrence opened by the same rule that resolved within ``before`` of this opening: a relapse
    recent: dict[int, bool] = {}
    first = min(detail.findings, key=lambda f: f.id).rule if detail.findings else None
    # first the earlier ones with this key: one resolved minutes ago, inside the window, is this
    # failure happening again, not another incident that shares its cause
    for incident in queries.incidents_in_window(engine, detail.opened_at - gathering.related_lookback,
                                                detail.opened_at, correlation_key=detail.correlation_key):
        if incident.id != detail.id and incident.opened_at < detail.opened_at:
            related[incident.id] = (incident, "recurrence")
            recent[incident.id] = (incident.resolved_at is not None and incident.opened_by == first
                                   and detail.opened_at - incident.resolved_at <= gathering.before)
    for incident in queries.incidents_in_window(engine, since, until):
        if incident.id != detail.id and incident.id not in related:
            related[incident.id] = (incident, "parent" if parents & set(incident.targets) else "concurrent")
    return [EvidenceItem(id=f"incident:{i.id}", kind="incident", at=i.opened_at,
                         summary=f"incident #{i.id} ({i.state}, {i.severity}) of {i.service}: {i.title}",
                         labels={"id": str(i.id), "relation": relation, "service": i.service, "state": i.state,
                                 "severity": i.severity, "title": i.title, "correlation_key": i.correlation_key,
                                 "target": i.targets[0] if i.targets else "", "targets": ",".join(i.targets),
                                 "categories": ",".join(i.categories),
                                 "relapse": "yes" if recent.get(i.id) else "no"})
            for i, relation in related.values()]


def change_items(engine: Engine, detail: IncidentDetail, since: datetime, until: datetime,
                 now: datetime) -> list[EvidenceItem]:
    """Silences and maintenance windows in force at some time in the window: ended before the
    incident opened, in force when it opened, or started after."""
    items = []
    for silence in queries.list_silences(engine, now, include_expired=True):
        spans = occurrences(silence, since, until)
        if not spans:
            continue
        if any(start <= detail.opened_at < end for start, end in spans):
            timing = "in force"
        else:
            timing = "ended before" if spans[0][1] <= detail.opened_at else "started after"
        matchers = ", ".join(str(matcher_from_dict(m)) for m in silence.matchers)
        items.append(EvidenceItem(id=f"{silence.kind}:{silence.id}", kind="change", at=spans[0][0],
                                  summary=f"{silence.kind} #{silence.id} {{{matchers}}} {timing} the opening: "
                                          f"{silence.comment}",
                                  labels={"id": str(silence.id), "kind": silence.kind, "timing": timing,
                                          "comment": silence.comment, "author": silence.author,
                                          "matchers": matchers}))
    return items


def version_changes(store: SampleStore, service: str, targets: list[str], since: datetime, until: datetime,
                    opened_at: datetime) -> list[EvidenceItem]:
    """Deploys seen in the labels of the series of ``service`` (and ``targets``): a series that
    appears in [since, until] with a new value of a VERSION_LABELS label beside the same series
    with an older value (when the new one was first seen is the change's time), timed against
    ``opened_at``."""
    among = ", ".join("?" for _ in targets) or "NULL"
    rows = store.query(
        "SELECT name, labels, min(ts) AS first FROM samples "
        f"WHERE ts >= ? AND ts <= ? AND (service = ? OR target IN ({among})) GROUP BY name, labels ORDER BY first",
        since, until, [since, until, service, *targets])
    seen: dict[tuple, list[tuple[str, datetime]]] = {}
    for name, text, first in rows.iter_rows():
        labels = json.loads(text)
        running = {k: labels.pop(k) for k in sorted(VERSION_LABELS & labels.keys())}
        if running:
            version = ", ".join(f"{k}={v}" for k, v in sorted(running.items()))
            seen.setdefault((name, json.dumps(labels, sort_keys=True)), []).append((version, first))
    items = []
    for (name, text), versions in seen.items():
        for (old, _), (new, at) in zip(versions, versions[1:]):
            where = ", ".join(f"{k}={v}" for k, v in sorted(json.loads(text).items()) if k not in ("kind",))
            timing = "before" if at <= opened_at else "started after"
            digest = zlib.crc32(f"{name}{text}{new}".encode()).to_bytes(4, "big").hex()
            items.append(EvidenceItem(
                id=f"deploy:{digest}", kind="change", at=at,
                summary=f"{name}{{{where}}} changed from {old} to {new} at {at:%H:%M:%S} UTC, {timing} the opening",
                labels={"kind": "deploy", "timing": timing, "comment": f"{old} -> {new}", "series": name,
                        "from": old, "to": new, "matchers": f"{{{where}}}", "author": "a deploy"}))
    return items


# Probe kinds whose run is the workbench reading another system (a Prometheus query, Alertmanager's
# alerts, a log file): how long that took says nothing about the service, so it is never evidence.
OWN_READS = frozenset({"prometheus", "alertmanager", "logs"})


def series_evidence(store: SampleStore, detail: IncidentDetail, gathering: Gathering, since: datetime,
                    until: datetime) -> list[EvidenceItem]:
    """Series of the incident's service and targets whose mean since the opening moved by
    ``shift_ratio`` or more against their baseline; the largest moves first. The baseline is the
    median before the opening, leaving out the BUILDUP before it, at most the last sixth of
    ``before`` (where a fault is usually
    already growing), so neither an earlier fault in the window nor the ramp of this one is taken
    for normal. A series with no sample in the baseline while the service had some (an error
    counter that starts with the first error) is compared with zero."""
    targets = sorted({f.target for f in detail.findings})
    opened = detail.opened_at
    baseline_until = max(since, opened - min(BUILDUP, gathering.before / 6))
    among = ", ".join("?" for _ in targets) or "NULL"
    rows = store.query(
        "SELECT name, labels, avg(value) FILTER (WHERE ts >= ?) AS during, "
        "median(value) FILTER (WHERE ts < ?) AS before "
        f"FROM samples WHERE ts >= ? AND ts <= ? AND (service = ? OR target IN ({among})) GROUP BY name, labels",
        since, until, [opened, baseline_until, since, until, detail.service, *targets])
    measured_before = any(before is not None for *_, before in rows.iter_rows())
    shifted = []
    for name, text, during, before in rows.iter_rows():
        labels = json.loads(text)
        if name == "probe_duration_seconds" and labels.get("kind") in OWN_READS or VERSION_LABELS & labels.keys():
            continue  # the workbench's own reads; a version's series (see version_changes)
        if before is None and measured_before:
            before = 0.0  # it did not exist yet
        ratio, shift = _shift(during, before, gathering.shift_ratio)
        if shift:
            shifted.append((abs(math.log(ratio)), name, labels, during, before, ratio, shift))
    shifted.sort(key=lambda row: (-row[0], row[1], json.dumps(row[2], sort_keys=True)))
    return [_series_item(name, labels, during, before, ratio, shift)
            for _, name, labels, during, before, ratio, shift in shifted[:gathering.max_series]]


def _shift(during: float | None, before: float | None, threshold: float) -> tuple[float, str | None]:
    """How far the mean moved (a factor >= 1) and which way, or no shift."""
    if during is None or before is None:
        return 1.0, None
    high, low = max(during, before), min(during, before)
    ratio = RATIO_CAP if low <= 0 < high else (high / low if low > 0 else 1.0)
    if min(ratio, RATIO_CAP) < threshold:
        return 1.0, None
    return min(ratio, RATIO_CAP), "up" if during > before else "down"


def _series_item(name: str, labels: dict, during: float, before: float, ratio: float, shift: str) -> EvidenceItem:
    selector = f"{name}{{{', '.join(f'{k}={v!r}' for k, v in sorted(labels.items()))}}}"
    digest = zlib.crc32(selector.encode()).to_bytes(4, "big").hex()
    return EvidenceItem(id=f"series:{digest}", kind="series", at=None,
                        summary=f"{selector}: mean {during:.4g} since the opening vs a baseline of {before:.4g} "
                                f"({shift} {ratio:.1f}x)",
                        labels={**_text(labels), "name": name, "shift": shift, "ratio": f"{ratio:.1f}"})


def _text(labels: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in labels.items() if v is not None}
