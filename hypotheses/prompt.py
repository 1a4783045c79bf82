"""The prompt of a hypothesis refinement: the incident, its evidence and the draft, as text,
redacted before it leaves the process: secret values the policy references, secret-shaped
strings (tokens, passwords, keys) and e-mail addresses are masked."""

from __future__ import annotations

from collections.abc import Iterable

from hypotheses.answer import NEW_IDS
from hypotheses.models import Draft
from ledger.queries import IncidentDetail
from policies.secrets import redact

SUMMARY_MAX, EVIDENCE_MAX = 240, 40
SYSTEM = (
    "You are an SRE assistant ranking root-cause hypotheses for an incident. Answer with JSON only, in the "
    "given schema. Rank the drafted hypotheses from most to least likely, set each one's confidence between 0 "
    "and 1, explain each in one or two sentences from the evidence, and add at most {new} new hypotheses "
    "(ids {ids}) when the evidence supports them. Every hypothesis cites evidence ids from the list. Do not "
    "propose or run actions."
)


def messages(detail: IncidentDetail, draft: Draft, secrets: Iterable[str]) -> list[dict[str, str]]:
    """System and user messages, redacted."""
    system = SYSTEM.format(new=len(NEW_IDS), ids=", ".join(NEW_IDS))
    return [{"role": "system", "content": system},
            {"role": "user", "content": redact(incident_text(detail, draft), secrets, emails=True)}]


def incident_text(detail: IncidentDetail, draft: Draft) -> str:
    lines = [f"Incident #{detail.id}: {detail.title}",
             f"service {detail.service}, severity {detail.severity}, state {detail.state}, "
             f"opened {detail.opened_at:%Y-%m-%d %H:%M:%S} UTC", "", "Evidence:"]
    for item in draft.evidence[:EVIDENCE_MAX]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(item.labels.items()) if v)
        lines.append(f"- {item.id} ({item.kind}): {_clip(item.summary)} [{_clip(labels)}]")
    lines += ["", "Drafted hypotheses (rank. id: title; confidence; evidence):"]
    for n, h in enumerate(draft.hypotheses, 1):
        lines.append(f"{n}. {h.id}: {h.title}; {h.confidence:.2f}; {', '.join(h.evidence_ids)}")
    return "\n".join(lines)


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX - 1] + "…"
