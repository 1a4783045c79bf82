"""Gatus-style probe conditions: ``[STATUS] == 200``, ``[RESPONSE_TIME] < 800``.

A condition is parsed once when the policy loads and evaluated against the values a
probe measured; the result keeps the condition and the actual value as evidence
(``[STATUS] == 200 -> got 503``).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

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
        "BODY": "the answers, one per line",
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
}

_SYNTAX = re.compile(
    r"^\[(?P<name>[A-Z_]+)\]\s*(?P<op>==|!=|<=|>=|<|>|contains|not-contains)\s*(?P<expected>.+?)\s*$"
)


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
        op = match["op"]
        expected = match["expected"].strip().strip('"')
        if op not in ("contains", "not-contains") and name not in ("BODY",):
            if _number(expected) is None and expected not in ("true", "false"):
                raise ValueError(f"[{name}] {op} needs a number, got {expected!r}")
        return cls(source=source.strip(), name=name, op=op, expected=expected)

    def evaluate(self, values: dict[str, object]) -> CheckResult:
        if self.name not in values or values[self.name] is None:
            return CheckResult(self.source, False, "nothing (not measured)")
        actual = values[self.name]
        shown = _show(actual)
        if self.op in ("contains", "not-contains"):
            return CheckResult(self.source, OPERATORS[self.op](actual, self.expected), shown)
        expected_num, actual_num = _number(self.expected), _number(actual)
        if expected_num is not None and actual_num is not None:
            return CheckResult(self.source, OPERATORS[self.op](actual_num, expected_num), shown)
        return CheckResult(self.source, OPERATORS[self.op](str(actual).lower(), self.expected.lower()), shown)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
