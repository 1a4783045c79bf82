"""Plain-text renderings of hypotheses and routing decisions for the CLI."""

from __future__ import annotations

from hypotheses.models import Hypothesis
from hypotheses.refine import HypothesesView
from ledger.queries import DecisionItem


def hypotheses_text(view: HypothesesView) -> str:
    draft = view.draft
    lines = [f"Incident #{draft.incident_id}: evidence {draft.since:%Y-%m-%d %H:%M:%S} → {draft.until:%H:%M:%S} UTC, "
             f"{len(draft.evidence)} item(s)", "", "Draft (rules):"]
    lines += hypothesis_lines(draft.hypotheses) or ["  (no rule holds for this evidence)"]
    lines += ["", "Model refinement:"]
    run = view.run
    if run is None:
        lines.append("  (none requested yet)")
    elif view.refinement is None:
        lines.append(f"  {run.status}" + (f": {run.reason}" if run.reason else "") + " — the draft stands")
    else:
        lines += hypothesis_lines(view.refinement.hypotheses)
        lines += ["  changes: " + ("; ".join(f"{c.hypothesis_id}: {c.what}" for c in view.refinement.changes)
                                   or "none")]
    if view.decision is not None:
        d = view.decision
        lines.append(f"  decision #{d.id}: route {' > '.join(d.route) or '-'}, used {d.actual or 'none'}, "
                     f"reason {d.reason}, {d.latency_ms or 0:.0f} ms, {d.tokens} tokens")
    return "\n".join(lines)


def hypothesis_lines(hypotheses: list[Hypothesis]) -> list[str]:
    lines = []
    for n, h in enumerate(hypotheses, 1):
        added = " (added by the model)" if h.source == "model" else ""
        lines.append(f"  {n}. [{h.confidence:.2f}] {h.title}{added}")
        lines.append(f"     {h.explanation}")
        lines.append(f"     evidence: {', '.join(h.evidence_ids)}")
        lines += [f"     check: {c.title}" for c in h.checks]
    return lines


def decision_table(rows: list[DecisionItem]) -> str:
    lines = [f"{'ID':>5}  {'AT (UTC)':<19}  {'TASK':<12} {'SOURCE':<9} {'INCIDENT':>8}  {'EXPECTED':<12} "
             f"{'ACTUAL':<12} {'REASON':<11} {'TOKENS':>7}  DETAIL"]
    for d in rows:
        lines.append(f"{d.id:>5}  {d.at:%Y-%m-%d %H:%M:%S}  {d.task:<12} {d.source:<9} {d.incident_id or '':>8}  "
                     f"{d.expected or '-':<12} {d.actual or '-':<12} {d.reason:<11} {d.tokens:>7}  {d.detail}")
    if not rows:
        lines.append("(no routing decisions)")
    return "\n".join(lines)
