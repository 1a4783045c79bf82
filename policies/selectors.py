"""Series selectors and label matchers, written as in PromQL.

A selector names a series and narrows it by labels:
``probe_duration_seconds{service="demo", target=~"web-.*"}``. A matcher is a label, an
operator (``=``, ``!=``, ``=~``, ``!~``) and a value; regexes match the whole value, as in
Prometheus, and a missing label matches as the empty string. Silences use the same matchers,
written ``KEY=VALUE`` (or ``KEY=~REGEX`` ...) on the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

OPERATORS = ("=~", "!~", "!=", "=")
_LABEL = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_SERIES = re.compile(r"^\s*(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(?P<body>.*)\})?\s*$", re.DOTALL)
_QUOTED = re.compile(rf'\s*(?P<label>{_LABEL})\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')
_PLAIN = re.compile(rf"^\s*(?P<label>{_LABEL})\s*(?P<op>=~|!~|!=|=)(?P<value>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, label: str, op: str, value: str) -> Matcher:
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise ValueError(f"{label}{op}{value!r}: not a valid regex ({exc})") from None
        return cls(label, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label) or ""
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[Matcher, ...] = ()

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return (self.name is None or name == self.name) and all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ", ".join(map(str, self.matchers))
        return f"{self.name or ''}{{{inner}}}" if inner or not self.name else self.name


def parse_selector(text: str) -> Selector:
    """``name``, ``name{label="v", ...}`` or ``{label="v"}``; ValueError says what is wrong."""
    match = _SERIES.match(text or "")
    if not match or not (match["name"] or match["body"] is not None):
        name = (text or "").split("{", 1)[0].strip()
        if name and not _NAME.match(name):
            raise ValueError(f"{name!r} is not a valid series name: use letters, digits, _ and : (not starting "
                             "with a digit), as Prometheus does")
        raise ValueError(f"cannot parse series selector {text!r}: expected name{{label=\"value\", ...}}")
    matchers, body, at = [], match["body"] or "", 0
    while at < len(body) and body[at:].strip():
        part = _QUOTED.match(body, at)
        if not part:
            raise ValueError(f"cannot parse series selector {text!r} at {body[at:].strip()[:30]!r}: "
                             'expected label="value" (operators =, !=, =~, !~)')
        value = part["value"].replace('\\"', '"').replace("\\\\", "\\")
        matchers.append(Matcher.of(part["label"], part["op"], value))
        at = part.end()
    return Selector(match["name"], tuple(matchers))


def parse_matcher(text: str) -> Matcher:
    """``KEY=VALUE``, ``KEY!=VALUE``, ``KEY=~REGEX`` or ``KEY!~REGEX`` (no quotes needed)."""
    match = _PLAIN.match(text or "")
    if not match:
        raise ValueError(f"cannot parse matcher {text!r}: expected KEY=VALUE, KEY!=VALUE, KEY=~REGEX or KEY!~REGEX")
    value = match["value"]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return Matcher.of(match["label"], match["op"], value)


def matcher_from_dict(data: Mapping[str, str]) -> Matcher:
    return Matcher.of(data["label"], data["op"], data["value"])
