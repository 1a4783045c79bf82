"""Pydantic models of ``hypotheses.yaml``: the rules that draft root-cause hypotheses from an
incident's evidence, without a model.

A rule holds when each of its ``when`` clauses finds at least one evidence item of its kind
whose labels match all of the clause's matchers (``KEY=VALUE``, ``KEY!=VALUE``, ``KEY=~REGEX``,
``KEY!~REGEX``, as silences write them). The items found support the hypothesis. Titles,
explanations and checks are templates: ``${service}``, ``${incident}``, ``${title}``,
``${window}``, and ``${NAME.label}`` for the labels of the first item a clause bound as NAME.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policies.rules import Reduce
from policies.schema import _NAME, Strict, parse_duration, require_unique
from policies.selectors import parse_matcher

EvidenceKind = Literal["finding", "probe", "rule", "alert", "incident", "change", "series"]
CheckKind = Literal["series", "observations", "incidents"]
TEMPLATE_NAMES = ("service", "incident", "title", "window")
_BIND = r"^[a-z][a-z0-9_]*$"


class Template(string.Template):
    """``${name}`` or ``${bind.label}``; unknown names render as ``?``."""

    idpattern = r"[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?"
    flags = re.ASCII


def template_names(text: str) -> set[str]:
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"not a valid template: {text!r} (write $$ for a dollar sign)")
    return {name.split(".")[0] for name in template.get_identifiers()}


class Clause(Strict):
    evidence: EvidenceKind = Field(description="kind of evidence item the clause looks for")
    match: list[str] = Field(default_factory=list, description="label matchers, all must hold")
    bind: str | None = Field(default=None, pattern=_BIND, description="name under which templates see the "
                             "labels of the first matching item")

    @field_validator("match")
    @classmethod
    def _matchers(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_matcher(value)
        return values

    def matchers(self):
        return [parse_matcher(text) for text in self.match]


class CheckSpec(Strict):
    """A read-only check the workbench runs itself over the incident's window."""

    kind: CheckKind
    title: str = Field(description="template: what the check answers")
    series: str | None = Field(default=None, description="series: a selector (template) over the samples")
    reduce: Reduce = Field(default="p95", description="series: how the window's values are reduced")
    target: str | None = Field(default=None, description="observations: the target (template)")
    service: str | None = Field(default=None, description="incidents: the service (template)")

    @model_validator(mode="after")
    def _needs(self) -> CheckSpec:
        needed = {"series": "series", "observations": "target", "incidents": "service"}[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.kind} check needs {needed}")
        return self

    def templates(self) -> list[str]:
        return [t for t in (self.title, self.series, self.target, self.service) if t is not None]


class HypothesisRule(Strict):
    name: str = Field(pattern=_NAME, description="unique name; the hypothesis's id")
    title: str = Field(description="template: the hypothesis in one line")
    explanation: str = Field(description="template: why the evidence points there")
    confidence: float = Field(ge=0, le=1, description="how likely, 0-1, when the rule holds")
    when: list[Clause] = Field(min_length=1, description="clauses that must all find evidence")
    checks: list[CheckSpec] = Field(default_factory=list, description="what to check next")
    enabled: bool = True

    @model_validator(mode="after")
    def _templates(self) -> HypothesisRule:
        known = {*TEMPLATE_NAMES, *(c.bind for c in self.when if c.bind)}
        for text in (self.title, self.explanation, *(t for c in self.checks for t in c.templates())):
            if unknown := sorted(template_names(text) - known):
                raise ValueError(f"template {text!r} uses ${{{unknown[0]}}}: use {', '.join(sorted(known))}")
        return self


class Gathering(Strict):
    """Which evidence is gathered around an incident."""

    before: timedelta = Field(default=timedelta(minutes=30), description="look this far back before the "
                              "incident opened: samples' baseline, changes, concurrent incidents")
    after: timedelta = Field(default=timedelta(minutes=5), description="and this far past its last sighting")
    related_lookback: timedelta = Field(default=timedelta(days=7), description="earlier incidents of the same "
                                        "key this far back are recurrences")
    shift_ratio: float = Field(default=1.5, gt=1, description="a series whose mean in the window is this many "
                               "times its mean before (or this many times lower) has shifted")
    max_series: int = Field(default=50, ge=1, le=1000, description="most shifted series kept as evidence")

    @field_validator("before", "after", "related_lookback", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)


class HypothesesFile(Strict):
    evidence: Gathering = Field(default_factory=Gathering)
    max_hypotheses: int = Field(default=5, ge=1, le=20, description="most hypotheses in a draft")
    rules: list[HypothesisRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> HypothesesFile:
        require_unique((rule.name for rule in self.rules), "rule name")
        return self
