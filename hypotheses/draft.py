"""The deterministic draft: the hypothesis rules of ``hypotheses.yaml`` over an incident's
evidence, ranked by confidence, then by how much evidence supports them. Pure functions."""

from __future__ import annotations

from datetime import datetime

from hypotheses.models import Check, Draft, EvidenceItem, Hypothesis
from ledger.queries import IncidentDetail
from policies.hypotheses import CheckSpec, HypothesesFile, HypothesisRule, Template
from policies.schema import format_duration

MAX_EVIDENCE = 12  # evidence ids cited by one hypothesis


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def draft(detail: IncidentDetail, evidence: list[EvidenceItem], policy: HypothesesFile, since: datetime,
          until: datetime) -> Draft:
    fields = {"service": detail.service, "incident": str(detail.id), "title": detail.title,
              "window": format_duration(policy.evidence.before)}
    found = [h for rule in policy.rules if rule.enabled and (h := apply_rule(rule, evidence, fields)) is not None]
    ranked = sorted(found, key=lambda h: (-h.confidence, -len(h.evidence_ids), h.id))[:policy.max_hypotheses]
    return Draft(incident_id=detail.id, since=since, opened_at=detail.opened_at, until=until, evidence=evidence,
                 hypotheses=ranked)


def apply_rule(rule: HypothesisRule, evidence: list[EvidenceItem], fields: dict[str, str]) -> Hypothesis | None:
    """The rule's hypothesis when every clause finds evidence, else None."""
    values, support = _Fields(fields), []
    for clause in rule.when:
        matchers = clause.matchers()
        found = [e for e in evidence if e.kind == clause.evidence and all(m.matches(e.labels) for m in matchers)]
        if not found:
            return None
        support += [e.id for e in found if e.id not in support]
        if clause.bind:
            first = found[0]
            values.update({f"{clause.bind}.{k}": v for k, v in {**first.labels, "summary": first.summary,
                                                                  "evidence": first.id}.items()})
    return Hypothesis(id=rule.name, title=render(rule.title, values), explanation=render(rule.explanation, values),
                      confidence=rule.confidence, evidence_ids=support[:MAX_EVIDENCE],
                      checks=[render_check(spec, values) for spec in rule.checks])


def render(text: str, values: dict[str, str]) -> str:
    return " ".join(Template(text).substitute(values).split())


def render_check(spec: CheckSpec, values: dict[str, str]) -> Check:
    params = {"series": spec.series, "reduce": spec.reduce} if spec.kind == "series" else \
        {"target": spec.target} if spec.kind == "observations" else {"service": spec.service}
    return Check(kind=spec.kind, title=render(spec.title, values),
                 params={k: render(v, values) if k != "reduce" else v for k, v in params.items()})
