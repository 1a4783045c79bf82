"""Writes an incident's evidence into a real ledger and samples store the way the worker does
(probe runs through probes.cycle.record, rule findings and alerts through the repository),
from a case's ``evidence.yaml``. Times are offsets from the case's ``now`` (``-10m``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from ledger import queries
from ledger.db import write_session
from ledger.repo import alerts, incidents, silences
from ledger.samples import Sample, SampleStore
from policies.schema import TargetsFile, parse_duration
from probes.context import failed, observe
from probes.cycle import record

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def offset(text: str | int, now: datetime = NOW) -> datetime:
    text = str(text).strip()
    if text in ("0", "now"):
        return now
    sign = -1 if text.startswith("-") else 1
    return now + sign * parse_duration(text.lstrip("+-"))


def seed(case: dict, engine, store: SampleStore) -> int:
    """Write the case's evidence; return the id of its incident (the open one of its correlation key)."""
    targets = {t.name: t for t in TargetsFile.model_validate(case.get("targets") or {"targets": []}).targets}
    for run in case.get("probes", []):
        target, at = targets[run["target"]], offset(run["at"])
        if "error" in run:
            result = failed(target, at, 2.0, run["error"])
        else:
            result = observe(target, at, run.get("ms", 10.0), {"STATUS": run.get("status"),
                                                               "RESPONSE_TIME": run.get("ms", 10.0),
                                                               **run.get("values", {})},
                             status=run.get("status"))
        record(engine, target, result, now=lambda at=at: at)
    with write_session(engine) as session:
        for rule in case.get("rules", []):
            at = offset(rule["at"])
            spec = incidents.FindingSpec(rule=f"rule:{rule['rule']}", target=rule.get("target", rule["rule"]),
                                    service=rule["service"], severity=rule.get("severity", "warning"),
                                    summary=rule["summary"], correlation_key=rule["key"],
                                    labels={"category": rule["category"], **rule.get("labels", {})})
            opened = incidents.open_finding(session, spec, [incidents.RuleEvidence(rule["summary"], rule.get("data", {}),
                                                                                   at)], at)
            if "resolved" in rule:
                incidents.transition(session, opened.incident_id, "resolved", "ana", "fixed", offset(rule["resolved"]))
        for alert in case.get("alerts", []):
            at = offset(alert["at"])
            status = alert.get("status", "firing")
            alerts.record_alert(session, alerts.AlertEvent(
                source="alertmanager-webhook", fingerprint=alert["alertname"], status=status,
                starts_at=offset(alert.get("starts", alert["at"])), ends_at=at if status == "resolved" else None,
                labels={"alertname": alert["alertname"], **alert.get("labels", {})},
                annotations=alert.get("annotations", {}), generator_url=None, raw={}), at)
        for silence in case.get("silences", []):
            silences.add_silence(session, kind=silence.get("kind", "silence"), starts_at=offset(silence["starts"]),
                             ends_at=offset(silence["ends"]), author=silence.get("author", "ana"),
                             comment=silence["comment"], now=offset(silence["starts"]),
                             matchers=[{"label": k, "op": "=", "value": v} for k, v in silence["match"].items()])
    for series in case.get("samples", []):
        split, start = offset(series["split"]), offset(series.get("from", "-40m"))
        minutes = int((offset(series.get("until", "now")) - start) / timedelta(minutes=1))
        store.append(Sample(series["name"], series["labels"], series["before"] if at < split else series["during"], at)
                     for at in (start + timedelta(minutes=m) for m in range(minutes + 1)))
    store.flush()
    return next(i.id for i in queries.list_incidents(engine)
                if i.correlation_key == case["incident"] and i.resolved_at is None)


def load_case(folder: Path) -> tuple[dict, dict]:
    return (yaml.safe_load((folder / "evidence.yaml").read_text()),
            yaml.safe_load((folder / "expected.yaml").read_text()))
