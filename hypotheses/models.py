"""The shapes of a draft, its evidence and a model's refinement: what the CLI prints as JSON,
the ledger keeps and the pages show."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class EvidenceItem(BaseModel):
    """One piece of evidence, citable by its id: ``finding:12``, ``evidence:34``, ``incident:5``,
    ``silence:3``, ``series:1a2b3c4d``."""

    id: str
    kind: str  # finding | probe | rule | alert | incident | change | series
    at: datetime | None
    summary: str
    labels: dict[str, str]


class Check(BaseModel):
    """A read-only check the workbench runs itself (checks.py)."""

    kind: str  # series | observations | incidents
    title: str
    params: dict[str, str]


class Hypothesis(BaseModel):
    id: str
    title: str
    explanation: str
    confidence: float = Field(ge=0, le=1)
    evidence_ids: list[str]
    checks: list[Check] = Field(default_factory=list)
    source: Literal["rule", "model"] = "rule"


class Draft(BaseModel):
    incident_id: int
    since: datetime  # the evidence window: [since, opened_at) is the baseline before the incident
    opened_at: datetime
    until: datetime
    evidence: list[EvidenceItem]
    hypotheses: list[Hypothesis]

    @property
    def evidence_key(self) -> str:
        return evidence_key(self.evidence)


def evidence_key(items: list[EvidenceItem]) -> str:
    """Names the ledger evidence among ``items`` (samples left out: they move all the time), so
    a refinement is redone when that evidence changes."""
    ids = sorted(item.id for item in items if item.kind != "series")
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


class Change(BaseModel):
    hypothesis_id: str
    what: str


class Refinement(BaseModel):
    """The model's ranking: the hypotheses it ranked, then the rest of the draft in its order."""

    hypotheses: list[Hypothesis]
    changes: list[Change]
