"""An incident's post-mortem draft in Markdown: summary, impact, timeline, detection, cause (the
top hypotheses), actions and follow-ups, from the ledger's record of it
(``ledger.forensics.incident_record``). The review notebook ends with it and
``workbench incidents postmortem`` prints it: one text for both.

    >>> from ledger.postmortem import postmortem
    >>> print(postmortem(engine, 12))
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Engine

from ledger.forensics import IncidentRecord, incident_record, milestones
from ledger.lifecycle import Verdict, Verification

TOP_HYPOTHESES = 3


def postmortem(engine: Engine, incident_id: int, now: datetime | None = None) -> str:
    """The post-mortem draft of one incident, as Markdown."""
    return render_postmortem(incident_record(engine, incident_id, now))


def render_postmortem(record: IncidentRecord) -> str:
    """The post-mortem draft of an incident's record, as Markdown."""
    summary = record.summary
    sections = [f"# Post-mortem: incident #{summary['id']}: {_inline(summary['title'])}",
                _summary(record), _impact(record), _timeline(record), _detection(record), _cause(record),
                _actions(record), _follow_ups(record)]
    return "\n\n".join(sections) + "\n"


def duration_text(seconds: float | None) -> str:
    """``95`` as ``1m 35s``, ``3700`` as ``1h 1m 40s``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes) + [f"{secs}s"] * bool(secs or not whole)
    return " ".join(parts)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _inline(text: object) -> str:
    """Text fit for one Markdown table cell or heading: one line, pipes escaped."""
    return " ".join(str(text if text is not None else "-").split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_inline(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary(record: IncidentRecord) -> str:
    s = record.summary
    status = "still open" if s["resolved_at"] is None else f"resolved {_when(s['resolved_at'])}"
    return "\n".join([
        "## Summary", "",
        f"- Service: {s['service']}, severity {s['severity']}, state {s['state']} ({status})",
        f"- Opened: {_when(s['opened_at'])}",
        f"- Acknowledged: {_when(s['acknowledged_at'])}" + (f" by {s['acknowledged_by']}" if s["acknowledged_by"]
                                                             else ""),
        f"- Open for: {duration_text(s['seconds_to_resolve'])}" if s["resolved_at"] else "- Open for: ongoing",
        f"- Findings: {s['finding_count']}, alerts: {record.alerts.height}, "
        f"action requests: {record.actions.height}, notifications: {record.notifications.height}",
    ])


def _impact(record: IncidentRecord) -> str:
    s = record.summary
    lines = ["## Impact", "",
             f"- {s['service']} was affected for {duration_text(s['seconds_to_resolve'])}"
             if s["resolved_at"] else f"- {s['service']} is still affected"]
    lines += [f"- {f['target']}: {f['occurrences']} failed run(s) of {f['rule']}"
              + (f" (suppressed: {f['suppressed_by']})" if f["suppressed_by"] else "")
              for f in record.findings.iter_rows(named=True)]
    return "\n".join(lines)


def _timeline(record: IncidentRecord) -> str:
    rows = [[f"{t['at']:%H:%M:%S}", t["actor"], t["to_state"] or t["kind"], t["message"]]
            for t in record.timeline.iter_rows(named=True)]
    return "## Timeline\n\n" + _table(["time (UTC)", "who", "what", "detail"], rows)


def _detection(record: IncidentRecord) -> str:
    times = milestones(record)
    rows = [[m["milestone"], _when(m["at"]), m["measure"] or "", duration_text(m["seconds"])
             if m["measure"] else ""] for m in times.iter_rows(named=True)]
    first = record.findings.sort("first_seen", "id").head(1)
    fired = (f"First fired: {first['rule'][0]} on {first['target'][0]}: {_inline(first['summary'][0])}"
             if first.height else "No finding fired.")
    return "## Detection\n\n" + fired + "\n\n" + _table(["milestone", "when", "measure", "time"], rows)


def top_hypotheses(record: IncidentRecord, limit: int = TOP_HYPOTHESES) -> pl.DataFrame:
    """The ranked hypotheses of the newest run: the model's refinement where there is one, else
    the rules' draft."""
    found = record.hypotheses
    if found.is_empty():
        return found
    newest = found.filter(pl.col("run_id") == found["run_id"].max())
    stage = "refinement" if (newest["stage"] == "refinement").any() else "draft"
    return newest.filter(pl.col("stage") == stage).sort("rank").head(limit)


def _cause(record: IncidentRecord) -> str:
    top = top_hypotheses(record)
    if top.is_empty():
        return "## Cause\n\nNo hypotheses were drafted."
    lines = [f"## Cause\n\nThe {top['stage'][0]}'s top hypotheses:", ""]
    lines += [f"{h['rank']}. **{_inline(h['title'])}** (confidence {h['confidence']:.2f}, {h['source']}): "
              f"{_inline(h['explanation'])}" for h in top.iter_rows(named=True)]
    return "\n".join(lines)


def _actions(record: IncidentRecord) -> str:
    if record.actions.is_empty():
        return "## Actions\n\nNo action was proposed."
    rows = [[f"#{a['id']}", a["action"], a["risk"], a["status"], a["decided_by"] or "-",
             a["verification"] or "-", _when(a["finished_at"])] for a in record.actions.iter_rows(named=True)]
    return "## Actions\n\n" + _table(["request", "action", "risk", "status", "decided by", "verification",
                                      "finished"], rows)


def _follow_ups(record: IncidentRecord) -> str:
    items = [f"Confirm or rule out: {_inline(h['title'])}" for h in top_hypotheses(record, 1).iter_rows(named=True)]
    items += [f"Make {a['action']} safe to run sooner: it contained the incident after approval by "
              f"{a['decided_by']}" for a in record.actions.iter_rows(named=True)
              if a["verification"] == Verification.PASSED and a["decided_by"]]
    items += [f"Tune {f['rule']} on {f['target']}: the operator marked it noise"
              for f in record.findings.iter_rows(named=True) if f["feedback"] == Verdict.NOISE]
    if record.summary["acknowledged_at"] is None:
        items.append("Nobody acknowledged it: check the routes and escalations of its service")
    items.append("Write down what would have caught it earlier")
    return "## Follow-ups\n\n" + "\n".join(f"- [ ] {item}" for item in items)
