"""Pydantic models of ``rules.yaml``: each service's golden signals and the detector rules.

Series are named with PromQL-style selectors (policies/selectors.py) over the samples store:
every probe writes ``probe_success``, ``probe_duration_seconds`` and ``probe_value{value=...}``;
prometheus targets write their query's series; logs targets ``log_signature_matches``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Annotated, ClassVar, Literal, Union

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from policies import templates
from policies.expressions import parse_expression
from policies.schema import _NAME, Severity, Strict, format_duration, parse_duration, require_unique
from policies.selectors import Selector, parse_selector

Category = Literal["latency", "traffic", "errors", "saturation", "availability", "logs", "other"]
Reduce = Literal["last", "avg", "min", "max", "sum", "count", "p50", "p90", "p95", "p99"]
DEFAULT_SATURATION = 'probe_value{{service="{service}", kind="host", value=~"CPU|MEMORY|DISK"}}'


def _selector(text: str) -> str:
    parse_selector(text)
    return text


SelectorText = Annotated[str, AfterValidator(_selector)]


class _Signal(Strict):
    """A golden signal's series; written as a bare selector, or as a mapping that says more."""

    series: SelectorText = Field(description="selector of the signal's series")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: object) -> object:
        return {"series": value} if isinstance(value, str) else value


class Latency(_Signal):
    """``durations``: each sample one latency in seconds (p50/p95/p99 of the samples); ``histogram``:
    bucket counts per second with an ``le`` label (``rate(x_bucket[1m])``), p50/p95/p99 computed from
    the buckets as Prometheus's ``histogram_quantile`` does; ``percentile``: a series that already is
    one (``quantile`` says which), drawn as it is."""

    type: Literal["durations", "histogram", "percentile"] = "durations"
    quantile: float | None = Field(default=None, gt=0, lt=1, description="which percentile a percentile series "
                                   "is (0.95)")

    @model_validator(mode="after")
    def _quantile(self) -> "Latency":
        if (self.type == "percentile") != (self.quantile is not None):
            raise ValueError("quantile goes with type: percentile, and a percentile series needs it (0.95 for a p95)")
        return self

    @property
    def label(self) -> str:
        """The line of a percentile series on the chart: p95."""
        return f"p{self.quantile * 100:g}" if self.quantile else "p?"


class Traffic(_Signal):
    """``rate``: requests per second; ``counter``: a running count of requests (its increase per
    second is the traffic)."""

    type: Literal["rate", "counter"] = "rate"


class Errors(_Signal):
    """``rate``: errors per second (the error ratio is errors / traffic); ``ratio``: the error ratio
    itself (0-1)."""

    type: Literal["rate", "ratio"] = "rate"


class Saturation(_Signal):
    """A utilisation series: ``ratio`` (0-1) or ``percent`` (0-100); charted in percent under ``name``."""

    unit: Literal["ratio", "percent"] = "ratio"
    name: str | None = Field(default=None, max_length=80, description="its name on the chart (default: the series)")


class ServiceSignals(Strict):
    """Which series are a service's golden signals. Unset signals fall back to what its
    probes measure: latency = ``probe_duration_seconds`` (host probes left out: they time a
    CPU sample, not a request), error ratio = failed probe runs over
    all runs, traffic = probe runs, saturation = its host probes' CPU, memory and disk."""

    latency: Latency | None = Field(default=None, description="latency series (seconds): durations, a histogram "
                                    "or a percentile")
    traffic: Traffic | None = Field(default=None, description="request series: a rate (per second) or a counter")
    errors: Errors | None = Field(default=None, description="error series: a rate (ratio = errors / traffic) or a "
                                  "ratio")
    objective: float | None = Field(default=None, gt=0, lt=1, description="the share of good events promised "
                                    "(0.999): rule suggestions propose burn-rate rules for it")
    saturation: list[Saturation] = Field(default_factory=list, description="utilisation series (ratio or percent)")

    @model_validator(mode="after")
    def _errors_need_traffic(self) -> "ServiceSignals":
        if self.errors and self.errors.type == "rate" and not self.traffic:
            raise ValueError("errors needs traffic: the error ratio is errors / traffic (or give errors "
                             "type: ratio)")
        return self


@dataclass(frozen=True)
class Golden:
    """A service's golden signals with the defaults filled in: ``traffic`` None means the probe
    runs are the traffic, ``errors`` None that the error ratio is the share of failed probe runs
    (``success``)."""

    latency: Latency
    traffic: Traffic | None
    errors: Errors | None
    success: str
    saturation: list[Saturation]

    @property
    def errors_rate(self) -> bool:
        """Whether the error ratio is errors / traffic, both rates (what ``errors`` and ``burn_rate``
        rules read)."""
        return bool(self.errors and self.errors.type == "rate" and self.traffic and self.traffic.type == "rate")


def golden_signals(services: dict[str, ServiceSignals], service: str) -> Golden:
    """The golden signals of ``service``, defaults filled in."""
    declared = services.get(service, ServiceSignals())
    probe = f'{{service="{service}"}}'
    return Golden(
        latency=declared.latency or Latency(series=f'probe_duration_seconds{{service="{service}", kind!="host"}}'),
        traffic=declared.traffic, errors=declared.errors, success=f"probe_success{probe}",
        saturation=declared.saturation or [Saturation(series=DEFAULT_SATURATION.format(service=service),
                                                      unit="percent")])


# --- detector rules ----------------------------------------------------------------------

class _RuleBase(Strict):
    CATEGORY: ClassVar[str] = "other"
    name: str = Field(pattern=_NAME, description="unique name of the rule")
    service: str | None = Field(default=None, pattern=_NAME, description="service of its findings "
                                "(default: each group's service label)")
    severity: Severity = Field(default="warning")
    category: Category | None = Field(default=None, description="golden signal or kind of problem "
                                      "(default: from the rule's kind)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to its findings")
    by: list[str] = Field(default_factory=lambda: ["service"], description="labels that split the series "
                          "into groups, each evaluated on its own")
    window: timedelta = Field(default=timedelta(minutes=5), description="how far back each evaluation looks")
    for_: timedelta = Field(default=timedelta(0), alias="for", description="how long the condition must hold "
                            "before the rule fires (pending until then)")
    keep_firing_for: timedelta = Field(default=timedelta(0), description="how long it keeps firing after the "
                                       "condition stops holding")
    parent: str | None = Field(default=None, pattern=_NAME, description="a target whose open incident "
                               "suppresses this rule's findings")
    correlation_key: str = Field(default="{service}/{rule}", description="template: findings with the same "
                                 "key fold into one incident")
    summary: str | None = Field(default=None, description="template of the finding's one-line summary")
    recommend: list[str] = Field(default_factory=list, description="ids of actions (actions.yaml) proposed "
                                 "for the incident its findings open")
    enabled: bool = True
    shadow: bool = Field(default=False, description="evaluated and its firings recorded, but it opens no incident "
                         "(a learned rule in training)")

    @field_validator("window", "for_", "keep_firing_for", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if value in (0, "0", "0s"):
            return timedelta(0)
        return parse_duration(value)

    @field_validator("correlation_key", "summary")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if (unknown := templates.unknown_field(value)) is not None:
            raise ValueError(f"unknown field {{{unknown}}} (use {', '.join(templates.FIELDS)}[name])")
        if problem := templates.problem(value, cls._template_cases(info.data)):
            raise ValueError(problem)
        return value

    @classmethod
    def _template_cases(cls, data: dict) -> list[tuple[str, dict]]:
        """The sample fields its templates are rendered with; none when a field they need did not validate
        (its own problem says why)."""
        if any(key not in data for key in ("name", "service", "severity", "category", "labels", "by", "window")):
            return []
        return templates.samples(data["name"], data["service"], format_duration(data["window"]), data["severity"],
                                 data["category"] or cls.CATEGORY, data["labels"], data["by"])

    @property
    def kind_category(self) -> str:
        return self.category or self.CATEGORY

    def selectors(self) -> dict[str, Selector]:
        """The series the rule reads, by role."""
        raise NotImplementedError


HOURS_OF_WEEK = 168


class _Compare(Strict):
    above: float | None = Field(default=None, description="fires when the value is above this")
    below: float | None = Field(default=None, description="fires when the value is below this")
    by_hour_of_week: list[float] | None = Field(default=None, description="168 bounds, one for each hour of the "
                                                "week in UTC from Monday 00:00, in place of above's or below's value")

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.by_hour_of_week is not None and len(self.by_hour_of_week) != HOURS_OF_WEEK:
            raise ValueError(f"by_hour_of_week holds {HOURS_OF_WEEK} bounds (one an hour from Monday 00:00 UTC), "
                             f"not {len(self.by_hour_of_week)}")
        return self

    def bound(self, now) -> float:
        """The bound in force at ``now``: that hour of the week's, or the one bound."""
        if self.by_hour_of_week is None:
            return self.threshold
        return self.by_hour_of_week[now.weekday() * 24 + now.hour]

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else self.below

    @property
    def op(self) -> str:
        return ">" if self.above is not None else "<"


class ThresholdRule(_RuleBase, _Compare):
    """A series (or an expression over named series) reduced over the window, against a bound."""

    kind: Literal["threshold"]
    series: SelectorText | dict[str, SelectorText] = Field(description="a selector, or named selectors used "
                                                            "in expr")
    expr: str | None = Field(default=None, description="arithmetic over the named series, e.g. a / b")
    reduce: Reduce = Field(default="avg", description="how the window's values become one")

    @field_validator("series")
    @classmethod
    def _names(cls, value):
        for name in value if isinstance(value, dict) else ():
            if not name.isidentifier():
                raise ValueError(f"series name {name!r} must be an identifier (used in expr)")
        return value

    @model_validator(mode="after")
    def _expr_matches_series(self) -> "ThresholdRule":
        if isinstance(self.series, dict):
            if not self.expr:
                raise ValueError("named series need an expr that combines them")
            parse_expression(self.expr, set(self.series))
        elif self.expr:
            raise ValueError("expr needs named series (series: {a: ..., b: ...})")
        return self

    def selectors(self) -> dict[str, Selector]:
        if isinstance(self.series, str):
            return {"value": parse_selector(self.series)}
        return {name: parse_selector(text) for name, text in self.series.items()}


class LatencyRule(_RuleBase, _Compare):
    """A latency percentile over the window (the service's latency signal by default)."""

    CATEGORY: ClassVar[str] = "latency"
    kind: Literal["latency"]
    series: SelectorText | None = Field(default=None, description="latency series in seconds (default: "
                                        "the service's latency signal)")
    percentile: Literal[50, 90, 95, 99] = 99

    @model_validator(mode="after")
    def _series_or_service(self) -> "LatencyRule":
        if self.series is None and self.service is None:
            raise ValueError("a latency rule needs a series or a service (whose latency signal it reads)")
        return self

    def selectors(self) -> dict[str, Selector]:
        return {"value": parse_selector(self.series)}


class ErrorsRule(_RuleBase):
    """Error ratio over the window: errors / requests (means of two rate series), or, without
    them, the share of failed probe runs of the service."""

    CATEGORY: ClassVar[str] = "errors"
    kind: Literal["errors"]
    errors: SelectorText | None = Field(default=None, description="error rate series")
    requests: SelectorText | None = Field(default=None, description="request rate series")
    above: float = Field(gt=0, le=1, description="fires when the error ratio is above this (0-1)")
    min_requests: float = Field(default=0, ge=0, description="no verdict while mean requests are below this")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "ErrorsRule":
        if (self.errors is None) != (self.requests is None):
            raise ValueError("give both errors and requests, or neither (then: failed probe runs)")
        return self

    def selectors(self) -> dict[str, Selector]:
        if self.errors is None:
            service = f'{{service="{self.service}"}}' if self.service else ""
            return {"success": parse_selector(f"probe_success{service}")}
        return {"errors": parse_selector(self.errors), "requests": parse_selector(self.requests)}


class BurnRateRule(ErrorsRule):
    """How fast the error budget of an objective burns, over two windows (the SRE workbook's
    multi-window alert): the error ratio over ``window`` (the long one) and over ``short`` both
    above ``factor`` x (1 - ``objective``). The value is the long window's burn rate."""

    kind: Literal["burn_rate"]  # type: ignore[assignment]
    objective: float = Field(gt=0, lt=1, description="the share of good events promised, e.g. 0.999")
    factor: float = Field(default=14.4, gt=0, description="how many times faster than allowed the budget burns")
    short: timedelta = Field(default=timedelta(minutes=5), description="the short window, which must agree")
    above: float | None = Field(default=None, description="not used: the bound is factor x (1 - objective)")
    window: timedelta = Field(default=timedelta(hours=1), description="the long window")

    @field_validator("short", mode="before")
    @classmethod
    def _short(cls, value: object) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _no_bound(self) -> "BurnRateRule":
        if self.above is not None:
            raise ValueError("a burn_rate rule's bound is factor x (1 - objective): leave above out")
        if self.short >= self.window:
            raise ValueError("short must be shorter than window")
        return self


class TrafficRule(_RuleBase):
    """Traffic (mean rate over the window) against a bound, or against the same window
    ``baseline`` ago: a drop below (1 - drop) x baseline, or a spike above spike x baseline."""

    CATEGORY: ClassVar[str] = "traffic"
    kind: Literal["traffic"]
    series: SelectorText = Field(description="request rate series")
    above: float | None = None
    below: float | None = None
    drop: float | None = Field(default=None, gt=0, lt=1, description="fires when traffic fell by this share")
    spike: float | None = Field(default=None, gt=1, description="fires when traffic is this many times baseline")
    baseline: timedelta = Field(default=timedelta(days=1), description="how long ago the baseline window is")
    min_baseline: float = Field(default=0, ge=0, description="no verdict while the baseline is below this")

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline(cls, value: object) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _one_test(self) -> "TrafficRule":
        if sum(x is not None for x in (self.above, self.below, self.drop, self.spike)) != 1:
            raise ValueError("give exactly one of above, below, drop or spike")
        return self

    def selectors(self) -> dict[str, Selector]:
        return {"value": parse_selector(self.series)}


class SaturationRule(_RuleBase, _Compare):
    """Utilisation (CPU, memory, disk, pools, queues) reduced over the window, against a bound."""

    CATEGORY: ClassVar[str] = "saturation"
    kind: Literal["saturation"]
    series: SelectorText = Field(description="utilisation series")
    reduce: Reduce = Field(default="avg")

    def selectors(self) -> dict[str, Selector]:
        return {"value": parse_selector(self.series)}


class AbsenceRule(_RuleBase):
    """A series that stops reporting: a group seen in the ``lookback`` with no sample in the
    last ``window`` (or nothing at all in the lookback) is absent."""

    CATEGORY: ClassVar[str] = "availability"
    kind: Literal["absence"]
    series: SelectorText
    lookback: timedelta = Field(default=timedelta(hours=1), description="how far back a group counts as known")

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value: object) -> timedelta:
        return parse_duration(value)

    def selectors(self) -> dict[str, Selector]:
        return {"value": parse_selector(self.series)}


class LogSignatureRule(_RuleBase):
    """Lines matching a logs target's signature, counted over the window."""

    CATEGORY: ClassVar[str] = "logs"
    kind: Literal["log_signature"]
    target: str | None = Field(default=None, pattern=_NAME, description="the logs target (default: any)")
    signature: str = Field(pattern=_NAME, description="the signature's name in the logs target")
    above: float = Field(default=0, ge=0, description="fires when more lines than this matched")

    def selectors(self) -> dict[str, Selector]:
        target = f', target="{self.target}"' if self.target else ""
        return {"value": parse_selector(f'log_signature_matches{{signature="{self.signature}"{target}}}')}


Rule = Annotated[
    Union[ThresholdRule, LatencyRule, ErrorsRule, BurnRateRule, TrafficRule, SaturationRule, AbsenceRule,
          LogSignatureRule],
    Field(discriminator="kind"),
]


class Noise(Strict):
    """Flap protection: a rule group whose condition flips more than ``flap_limit`` times in
    ``flap_window`` is flapping; its incident is held open until it settles."""

    flap_limit: int = Field(default=4, ge=1)
    flap_window: timedelta = Field(default=timedelta(minutes=30))
    evaluation_interval: timedelta = Field(default=timedelta(seconds=15), description="how often rules run")

    @field_validator("flap_window", "evaluation_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)


class Learning(Strict):
    """Rules learned from history: suggested for the operator to review (``suggest``), or not at all."""

    mode: Literal["off", "suggest", "training_auto_create"] = Field(default="suggest", description="off, suggest, "
                                                                    "or training_auto_create")
    history: timedelta = Field(default=timedelta(days=7), description="how far back suggestions learn from, and "
                               "the range their backtests replay")
    noise_budget: float = Field(default=1.0, gt=0, description="episodes a day a suggested rule may fire at most "
                                "in its backtest")
    interval: timedelta = Field(default=timedelta(days=1), description="how often the worker suggests")
    min_incidents: int = Field(default=3, ge=1, description="training: incidents a suggestion must rest on to be "
                               "activated on its own")
    shadow_for: timedelta = Field(default=timedelta(days=1), description="training: how long an activated rule "
                                  "runs in shadow before it goes live")
    noise_margin: float = Field(default=2.0, ge=1, description="training: a rule whose live episodes a day exceed "
                                "its backtest's times this is rolled back")

    @field_validator("mode", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare off as false

    @field_validator("history", "interval", "shadow_for", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)


class RulesFile(Strict):
    services: dict[str, ServiceSignals] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    noise: Noise = Field(default_factory=Noise)
    learning: Learning = Field(default_factory=Learning)

    @model_validator(mode="after")
    def _unique_names(self) -> "RulesFile":
        require_unique((rule.name for rule in self.rules), "rule name")
        for rule in self.rules:
            latency = golden_signals(self.services, rule.service).latency
            if isinstance(rule, LatencyRule) and rule.series is None and latency.type != "durations":
                raise ValueError(f"rule {rule.name}: a latency rule without series reads {rule.service}'s latency, "
                                 f"which is a {latency.type}: give the rule a series of durations, or use a threshold "
                                 "rule with reduce: max on a percentile series (e.g. histogram_quantile(0.95, ...))")
        return self

    @cached_property
    def resolved(self) -> tuple:
        """The rules with their service's latency signal filled in where they left the series out."""
        return tuple(
            rule.model_copy(update={"series": golden_signals(self.services, rule.service).latency.series})
            if isinstance(rule, LatencyRule) and rule.series is None else rule
            for rule in self.rules)


class LearnedRulesFile(Strict):
    """``learned-rules.yaml``: the rules learned from history that the operator accepted
    (``workbench rules accept``). The workbench writes it; every revision is kept in the ledger."""

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> "LearnedRulesFile":
        require_unique((rule.name for rule in self.rules), "rule name")
        return self
