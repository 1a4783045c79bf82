"""Gatus-style probe conditions: ``[STATUS] == 200``, ``[RESPONSE_TIME] < 800``,
``[BODY].data.items[0].id == 7`` (a JSON path into the body), ``[BODY] matches ^ok``.

A condition is parsed once when the policy loads and evaluated against the values a
probe measured; the result keeps the condition and the actual value as evidence
(``[STATUS] == 200 -> got 503``).
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass

from policies.jsondoc import parse_json

# Placeholders each probe kind fills in, with what they mean.
_REACHED = {
    "CONNECTED": "true when the target answered",
    "RESPONSE_TIME": "time to the full answer, in milliseconds",
}
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "http": {
        "STATUS": "HTTP status code of the response",
        "BODY": "response body (read up to the maximum); [BODY].a.b[0] reads a JSON path",
        "CERTIFICATE_EXPIRATION": "days until the server certificate expires (https only)",
        **_REACHED,
    },
    "tcp": {"BODY": "what the server sent back after `send`", **_REACHED},
    "dns": {
        "DNS_RCODE": "response code: NOERROR, NXDOMAIN, SERVFAIL, ...",
        "BODY": "the answers, one per line, sorted",
        "RECORD_COUNT": "number of answers",
        **_REACHED,
    },
    "tls": {
        "CERTIFICATE_EXPIRATION": "days until the certificate expires",
        "CHAIN_VALID": "true when the chain verifies against the system's trust store",
        **_REACHED,
    },
    "host": {
        "CPU": "CPU busy, percent over a short sampling window",
        "MEMORY": "memory in use (total minus available), percent",
        "DISK": "disk space in use on the target's path, percent",
        "LOAD": "one-minute load average divided by the number of cores",
        "NET_RX_BPS": "bytes received per second over the sampling window",
        "NET_TX_BPS": "bytes sent per second over the sampling window",
        "NET_ERRORS": "receive and send errors and drops over the sampling window",
    },
    "prometheus": {
        "SERIES_COUNT": "number of series the query returned",
        "VALUE": "every series' latest value (all must hold; the worst is shown)",
        **_REACHED,
    },
    "alertmanager": {"ALERT_COUNT": "number of active alerts pulled", **_REACHED},
    "logs": {
        "LINES": "lines read since the last run",
        "MATCHES": "lines matching any signature since the last run",
        "CONNECTED": "true when the file or Loki could be read",
    },
}

OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "contains": lambda actual, expected: expected in str(actual),
    "not-contains": lambda actual, expected: expected not in str(actual),
    "matches": lambda actual, expected: re.search(expected, str(actual)) is not None,
    "not-matches": lambda actual, expected: re.search(expected, str(actual)) is None,
}
_TEXT_OPS = ("contains", "not-contains", "matches", "not-matches")
_TEXT_PLACEHOLDERS = ("BODY", "DNS_RCODE")  # compared as text with any operator

_SYNTAX = re.compile(
    r"^\[(?P<name>[A-Z_]+)\](?P<path>(?:\.[\w-]+|\[\d+\])*)\s*"
    r"(?P<op>==|!=|<=|>=|<|>|not-contains|contains|not-matches|matches)\s*(?P<expected>.+?)\s*$"
)
_STEP = re.compile(r"\.([\w-]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Each:
    """A placeholder measured once per item (e.g. per series): a condition holds when it holds
    for every item. The evidence shows the first failing item, or when all hold the worst
    one for an ordering (the largest for < and <=, the smallest for > and >=), with its name."""

    items: tuple[tuple[object, str], ...]  # (value, name of the item)


_WORST = {"<": max, "<=": max, ">": min, ">=": min}


@dataclass(frozen=True)
class Noted:
    """A measured value with a note the evidence shows beside it: ``false (self-signed certificate)``."""

    value: object
    note: str


@dataclass(frozen=True)
class CheckResult:
    condition: str
    ok: bool
    actual: str

    @property
    def text(self) -> str:
        return f"{self.condition} -> got {self.actual}"


@dataclass(frozen=True)
class Condition:
    source: str
    name: str
    op: str
    expected: str
    path: tuple[str | int, ...] = ()  # JSON path into [BODY]: keys and list indexes

    @classmethod
    def parse(cls, source: str, kind: str) -> "Condition":
        match = _SYNTAX.match(source.strip())
        if not match:
            raise ValueError(
                f"cannot parse condition {source!r}: expected '[PLACEHOLDER] OP VALUE' "
                f"with OP one of {', '.join(OPERATORS)}"
            )
        name = match["name"]
        known = PLACEHOLDERS.get(kind, {})
        if name not in known:
            raise ValueError(
                f"unknown placeholder [{name}] for a {kind} probe; known: "
                + ", ".join(f"[{n}]" for n in known)
            )
        path = tuple(key or int(index) for key, index in _STEP.findall(match["path"]))
        if path and name != "BODY":
            raise ValueError(f"[{name}]{match['path']}: a JSON path only applies to [BODY]")
        op = match["op"]
        expected = match["expected"].strip().strip('"')
        if op in ("matches", "not-matches"):
            try:
                re.compile(expected)
            except re.error as exc:
                raise ValueError(f"[{name}] {op} needs a regular expression, {expected!r} is not: {exc}") from None
        elif op not in _TEXT_OPS and name not in _TEXT_PLACEHOLDERS:
            if _number(expected) is None and expected not in ("true", "false"):
                raise ValueError(f"[{name}] {op} needs a number, got {expected!r}")
        return cls(source=source.strip(), name=name, op=op, expected=expected, path=path)

    def evaluate(self, values: dict[str, object]) -> CheckResult:
        if self.name not in values or values[self.name] is None:
            return CheckResult(self.source, False, "nothing (not measured)")
        actual = values[self.name]
        if isinstance(actual, Each):
            return self._evaluate_each(actual)
        note = ""
        if isinstance(actual, Noted):
            actual, note = actual.value, f" ({actual.note})"
        if self.path:
            try:
                actual = _json_at(str(actual), self.path)
            except ValueError as exc:
                return CheckResult(self.source, False, str(exc))
        shown = _show(actual) + note
        if self.op in _TEXT_OPS:
            return CheckResult(self.source, OPERATORS[self.op](actual, self.expected), shown)
        expected_num, actual_num = _number(self.expected), _number(actual)
        if expected_num is not None and actual_num is not None:
            return CheckResult(self.source, OPERATORS[self.op](actual_num, expected_num), shown)
        return CheckResult(self.source, OPERATORS[self.op](str(actual).lower(), self.expected.lower()), shown)

    def _evaluate_each(self, each: Each) -> CheckResult:
        if not each.items:
            return CheckResult(self.source, False, "nothing (none measured)")
        results = [(self.evaluate({self.name: value}).ok, value, name) for value, name in each.items]
        failing = [r for r in results if not r[0]]
        if failing:
            ok, value, name = failing[0]
        elif self.op in _WORST:
            ok, value, name = _WORST[self.op](results, key=lambda r: _number(r[1]))
        else:
            ok, value, name = results[0]
        return CheckResult(self.source, ok, f"{_show_exact(value)} {name}".rstrip())


def _json_at(body: str, path: tuple[str | int, ...]) -> str:
    """The value at ``path`` in the JSON ``body``, as text (``ok``, ``7``, ``true``, ``null``, ``[1, 2]``)."""
    value = parse_json(body)
    for depth, step in enumerate(path, 1):
        found = (isinstance(step, str) and isinstance(value, dict) and step in value) or (
            isinstance(step, int) and isinstance(value, list) and step < len(value))
        if not found:
            raise ValueError(f"no value at {_path_text(path[:depth])}")
        value = value[step]
    return value if isinstance(value, str) else json.dumps(value)


def _path_text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _show_exact(value: object) -> str:
    """A value whose digits matter (a series' value): 0.93, 1234567, 1e-07, nan, inf."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return _show(value)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
