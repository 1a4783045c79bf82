"""The policy gate: may this action run on this incident now, with these parameters?

Pure: it sees the catalog entry, the posture, the action's earlier runs, whether the incident
is open and whether the workbench's own probes or rules corroborate it, and answers with every
check it made (the Approvals page shows them). An incident that only outside alerts opened is
not corroborated: an alert's labels are whatever its sender wrote, so no action runs on them
without the operator's approval, whatever the catalog says.
A parameter that looks like a secret is refused: secrets enter only by reference, ``${NAME}``,
through a parameter declared ``secret``, so the ledger never holds one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from policies.actions import Action, Parameter
from policies.schema import format_duration
from policies.secrets import redact

_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Run:
    """An earlier run of the action: what it was given, when it started, on which incident."""

    parameters: dict
    started_at: datetime
    incident_id: int


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    parameters: dict  # validated, defaults filled in; as given (redacted) when they are not valid

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def refusal(self) -> str | None:
        """The first check that failed, as ``name: detail``."""
        return next((f"{c.name}: {c.detail}" for c in self.checks if not c.ok), None)


def check(action: Action | None, action_id: str, given: Mapping[str, object], *, posture: str, incident_id: int,
          incident_open: bool, corroborated: bool, runs: Sequence[Run], now: datetime) -> Verdict:
    """Every check of the gate, in order; ``runs`` are the action's runs on this incident and
    those within its cooldown."""
    if action is None:
        return Verdict((Check("catalog", False, f"no action {action_id!r} in actions.yaml"),), redacted(given))
    checks = [Check("catalog", True, f"{action.risk} action, {action.runner.kind} runner"),
              Check("enabled", action.enabled, "enabled" if action.enabled else "enabled: false in actions.yaml"),
              Check("posture", posture in action.postures,
                    f"posture {posture}; the action is allowed in {', '.join(action.postures)}")]
    try:
        parameters = validate_parameters(action, given)
        checks.append(Check("parameters", True, "valid" if parameters else "none"))
    except ValueError as exc:
        parameters = redacted(given)
        checks.append(Check("parameters", False, redact(str(exc))))
    checks += [_cooldown(action, parameters, runs, now), _attempts(action, incident_id, runs),
               Check("incident", incident_open, "open" if incident_open else "resolved: nothing left to act on"),
               Check("approval", True, approval_rule(action, corroborated))]
    return Verdict(tuple(checks), parameters)


def needs_approval(action: Action, corroborated: bool) -> bool:
    """Whether the operator must approve: the catalog says so, or nothing of the workbench's own
    corroborates the incident."""
    return action.needs_approval or not corroborated


def approval_rule(action: Action, corroborated: bool) -> str:
    if action.risk == "disruptive":
        return "required: a disruptive action always needs the operator's approval"
    if action.requires_approval:
        return "required by actions.yaml"
    if not corroborated:
        return ("required: only outside alerts opened this incident; no probe or rule of the workbench "
                "corroborates it")
    return f"not required: a {action.risk.replace('_', '-')} action with requires_approval: false"


def _cooldown(action: Action, parameters: dict, runs: Sequence[Run], now: datetime) -> Check:
    last = max((run.started_at for run in runs if run.parameters == parameters), default=None)
    if last is None or now - last >= action.cooldown:
        return Check("cooldown", True, f"no run with these parameters in the last {format_duration(action.cooldown)}")
    return Check("cooldown", False, f"ran with these parameters at {last:%Y-%m-%d %H:%M:%S} UTC; cooldown "
                                    f"{format_duration(action.cooldown)} lasts until {last + action.cooldown:%H:%M:%S} UTC")


def _attempts(action: Action, incident_id: int, runs: Sequence[Run]) -> Check:
    attempts = sum(1 for run in runs if run.incident_id == incident_id)
    return Check("attempts", attempts < action.max_attempts,
                 f"{attempts} of {action.max_attempts} run(s) on this incident so far")


def redacted(given: Mapping[str, object]) -> dict:
    """Parameters as given, strings masked where they look like secrets: safe to record."""
    return {name: redact(value) if isinstance(value, str) else value for name, value in given.items()}


def validate_parameters(action: Action, given: Mapping[str, object]) -> dict:
    """The parameters with defaults filled in and values of the declared types; ValueError
    names the first parameter that is wrong and why."""
    if unknown := sorted(set(given) - set(action.parameters)):
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; {action.id} takes "
                         f"{', '.join(action.parameters) or 'none'}")
    values = {}
    for name, spec in action.parameters.items():
        value = given.get(name, spec.default)
        if value is None:
            raise ValueError(f"{name}: required")
        try:
            values[name] = _valid(spec, value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None
    return values


def _valid(spec: Parameter, value: object) -> object:
    typed = _CONVERT[spec.type](value)
    if isinstance(typed, str):
        _valid_string(spec, typed)
    elif isinstance(typed, (int, float)) and not isinstance(typed, bool):
        if spec.minimum is not None and typed < spec.minimum:
            raise ValueError(f"{typed} is below the minimum {spec.minimum:g}")
        if spec.maximum is not None and typed > spec.maximum:
            raise ValueError(f"{typed} is above the maximum {spec.maximum:g}")
    if spec.choices is not None and typed not in spec.choices:
        raise ValueError(f"{typed!r} is not one of {', '.join(map(str, spec.choices))}")
    return typed


def _valid_string(spec: Parameter, value: str) -> None:
    if spec.secret:
        if not _REFERENCE.match(value):
            raise ValueError("a secret parameter takes a reference to the environment, ${NAME}, not a value")
        return
    if redact(value) != value:
        raise ValueError("looks like a secret; pass secrets by reference (${NAME}) in a secret parameter")
    if "${" in value:
        raise ValueError("references to the environment (${NAME}) only in a secret parameter")
    if _CONTROL.search(value):
        raise ValueError("control characters (newlines, tabs, NUL) are not allowed")
    if len(value) > spec.max_length:
        raise ValueError(f"longer than {spec.max_length} characters")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueError(f"{value!r} does not match {spec.pattern}")


def _string(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


_CONVERT = {"string": _string, "integer": _integer, "number": _number, "boolean": _boolean}
