"""What a model may answer about a draft, and how its answer becomes a refinement.

The model ranks the drafted hypotheses, rewrites their explanations, sets their confidence
and may add a few of its own, each citing evidence ids of the draft. The JSON schema sent as
``format=`` lists the ids it may use; the answer is validated again here with pydantic
(numeric bounds, lengths, no other keys: no actions) and against the draft's ids.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hypotheses.errors import InvalidAnswer
from hypotheses.models import Change, Draft, Hypothesis, Refinement

TITLE_MAX, EXPLANATION_MAX, CITED_MAX, NEW_MAX = 160, 400, 6, 2
NEW_IDS = tuple(f"new-{n}" for n in range(1, NEW_MAX + 1))


class RankedHypothesis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    explanation: str = Field(min_length=1, max_length=EXPLANATION_MAX)
    confidence: float = Field(ge=0, le=1)
    evidence_ids: list[str] = Field(min_length=1, max_length=CITED_MAX)


class ModelAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hypotheses: list[RankedHypothesis] = Field(min_length=1)


def answer_schema(draft: Draft) -> dict:
    """The JSON schema of an answer about ``draft``: hypothesis ids and evidence ids limited
    to the draft's (and a few new ids), with the bounds ModelAnswer checks."""
    size = len(draft.hypotheses) + NEW_MAX
    hypothesis = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "enum": [h.id for h in draft.hypotheses] + list(NEW_IDS)},
            "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
            "explanation": {"type": "string", "minLength": 1, "maxLength": EXPLANATION_MAX},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "evidence_ids": {"type": "array", "minItems": 1, "maxItems": CITED_MAX,
                             "items": {"type": "string", "enum": [e.id for e in draft.evidence]}},
        },
        "required": ["id", "title", "explanation", "confidence", "evidence_ids"],
        "additionalProperties": False,
    }
    return {"type": "object", "properties": {"hypotheses": {"type": "array", "minItems": 1, "maxItems": size,
                                                            "items": hypothesis}},
            "required": ["hypotheses"], "additionalProperties": False}


def parse_answer(content: str, draft: Draft) -> ModelAnswer:
    """The validated answer, or InvalidAnswer saying what is wrong with it."""
    try:
        answer = ModelAnswer.model_validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        raise InvalidAnswer(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None
    drafted, known, seen = {h.id for h in draft.hypotheses}, {e.id for e in draft.evidence}, set()
    for item in answer.hypotheses:
        if item.id in seen:
            raise InvalidAnswer(f"hypothesis {item.id!r} is ranked twice")
        seen.add(item.id)
        if item.id not in drafted and item.id not in NEW_IDS:
            raise InvalidAnswer(f"hypothesis {item.id!r} is neither drafted nor one of {', '.join(NEW_IDS)}")
        if unknown := [e for e in item.evidence_ids if e not in known]:
            raise InvalidAnswer(f"hypothesis {item.id!r} cites evidence {unknown[0]!r}, which does not exist")
    return answer


def refine(draft: Draft, answer: ModelAnswer) -> Refinement:
    """The model's ranking first, then the drafted hypotheses it left out, in draft order; with
    what it changed. Drafted hypotheses keep their title and checks: the model only ranks,
    explains and adds."""
    drafted = {h.id: h for h in draft.hypotheses}
    ranked = []
    for item in answer.hypotheses:
        cited = list(dict.fromkeys(item.evidence_ids))
        if item.id in drafted:
            ranked.append(drafted[item.id].model_copy(update={"explanation": item.explanation,
                                                               "confidence": item.confidence}))
        else:
            ranked.append(Hypothesis(id=item.id, title=item.title, explanation=item.explanation,
                                     confidence=item.confidence, evidence_ids=cited, source="model"))
    ranked += [h for h in draft.hypotheses if h.id not in {r.id for r in ranked}]
    return Refinement(hypotheses=ranked, changes=changes(draft.hypotheses, ranked))


def changes(before: list[Hypothesis], after: list[Hypothesis]) -> list[Change]:
    place = {h.id: (n, h) for n, h in enumerate(before, 1)}
    found = []
    for n, h in enumerate(after, 1):
        if h.id not in place:
            found.append(Change(hypothesis_id=h.id, what=f"added at rank {n}: {h.title}"))
            continue
        was, old = place[h.id]
        if was != n:
            found.append(Change(hypothesis_id=h.id, what=f"rank {was} → {n}"))
        if abs(old.confidence - h.confidence) >= 0.005:
            found.append(Change(hypothesis_id=h.id, what=f"confidence {old.confidence:.2f} → {h.confidence:.2f}"))
        if old.explanation != h.explanation:
            found.append(Change(hypothesis_id=h.id, what="explanation rewritten"))
    return found
