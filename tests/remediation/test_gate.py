"""The policy gate alone: a pure function of the catalog entry, the posture, earlier runs and
the incident; every check is answered, the first failure is the refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies.actions import Action
from remediation.gate import Run, check, needs_approval, validate_parameters
from tests.remediation.support import NOW


def action(**overrides) -> Action:
    spec = {"id": "scale", "runner": {"kind": "command", "argv": ["/usr/bin/true", "{{replicas}}", "{{mode}}"]},
            "parameters": {"replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
                           "mode": {"choices": ["fast", "safe"], "default": "safe"},
                           "dry_run": {"type": "boolean", "default": False}},
            "risk": "containment", "postures": ["demo", "staging"], "enabled": True, "cooldown": "10m",
            "max_attempts": 2}
    return Action.model_validate({**spec, **overrides})


def verdict(act=None, given=None, posture="demo", runs=(), incident_open=True, corroborated=True):
    return check(act or action(), "scale", given or {}, posture=posture, incident_id=7, incident_open=incident_open,
                 corroborated=corroborated, runs=list(runs), now=NOW)


def test_every_check_passes_for_a_good_request():
    result = verdict(given={"replicas": "3"})
    assert result.ok and result.refusal is None
    assert result.parameters == {"replicas": 3, "mode": "safe", "dry_run": False}
    assert [c.name for c in result.checks] == ["catalog", "enabled", "posture", "parameters", "cooldown", "attempts",
                                               "incident", "approval"]


@pytest.mark.parametrize("kwargs, refusal", [
    ({"act": action(enabled=False)}, "enabled: enabled: false in actions.yaml"),
    ({"posture": "production"}, "posture: posture production; the action is allowed in demo, staging"),
    ({"given": {"replicas": 11}}, "parameters: replicas: 11 is above the maximum 10"),
    ({"given": {"replicas": True}}, "parameters: replicas: expected an integer, got a boolean"),
    ({"given": {"mode": "yolo"}}, "parameters: mode: 'yolo' is not one of fast, safe"),
    ({"given": {"colour": "red"}}, "parameters: unknown parameter(s) colour; scale takes replicas, mode, dry_run"),
    ({"given": {"dry_run": "maybe"}}, "parameters: dry_run: expected true or false, got 'maybe'"),
    ({"incident_open": False}, "incident: resolved: nothing left to act on"),
])
def test_each_refusal_names_its_check(kwargs, refusal):
    result = verdict(**kwargs)
    assert not result.ok and result.refusal == refusal


def test_cooldown_counts_runs_with_the_same_parameters_only():
    same = Run({"replicas": 2, "mode": "safe", "dry_run": False}, NOW - timedelta(minutes=5), incident_id=1)
    other = Run({"replicas": 4, "mode": "safe", "dry_run": False}, NOW - timedelta(minutes=1), incident_id=1)
    assert verdict(runs=[other]).ok
    assert verdict(runs=[same]).refusal == ("cooldown: ran with these parameters at 2026-03-01 11:55:00 UTC; "
                                            "cooldown 10m lasts until 12:05:00 UTC")
    assert verdict(runs=[Run(same.parameters, NOW - timedelta(minutes=10), 1)]).ok


def test_attempts_count_runs_on_this_incident():
    runs = [Run({"replicas": n}, NOW - timedelta(hours=n), incident_id=7) for n in (1, 2)]
    assert verdict(runs=runs).refusal == "attempts: 2 of 2 run(s) on this incident so far"
    assert verdict(runs=[Run({"replicas": 1}, NOW - timedelta(hours=1), incident_id=8)] * 5).ok


def test_an_unknown_action_is_refused_by_the_catalog_check():
    result = check(None, "nuke", {"password": "password=hunter2hunter2"}, posture="demo", incident_id=7,
                   incident_open=True, corroborated=True, runs=[], now=NOW)
    assert result.refusal == "catalog: no action 'nuke' in actions.yaml"
    assert result.parameters == {"password": "password=***"}


@pytest.mark.parametrize("value, problem", [
    ("line one\nline two", "control characters (newlines, tabs, NUL) are not allowed"),
    ("${HOME}", "references to the environment (${NAME}) only in a secret parameter"),
    ("Bearer abcdefghijklmnop", "looks like a secret; pass secrets by reference (${NAME}) in a secret parameter"),
    ("x" * 41, "longer than 40 characters"),
    ("web_1", "'web_1' does not match [a-z0-9-]+"),
])
def test_string_parameters_are_checked(value, problem):
    spec = action(runner={"kind": "notify", "message": "{{name}}"},
                  parameters={"name": {"pattern": "[a-z0-9-]+", "max_length": 40}})
    with pytest.raises(ValueError) as caught:
        validate_parameters(spec, {"name": value})
    assert str(caught.value) == f"name: {problem}"


def test_a_secret_parameter_takes_only_a_reference():
    spec = action(runner={"kind": "notify", "message": "{{token}}"}, parameters={"token": {"secret": True}})
    assert validate_parameters(spec, {"token": "${API_TOKEN}"}) == {"token": "${API_TOKEN}"}
    with pytest.raises(ValueError, match="token: a secret parameter takes a reference to the environment"):
        validate_parameters(spec, {"token": "plain-value"})


def test_required_parameters_and_approval_rules():
    spec = action(runner={"kind": "notify", "message": "{{text}}"}, parameters={"text": {}})
    with pytest.raises(ValueError, match="text: required"):
        validate_parameters(spec, {})
    approval = {c.name: c.detail for c in verdict(act=action(risk="disruptive", requires_approval=False)).checks}
    assert approval["approval"] == "required: a disruptive action always needs the operator's approval"
    assert action(risk="disruptive", requires_approval=False).needs_approval
    assert not action(requires_approval=False).needs_approval


def test_an_incident_only_outside_alerts_opened_needs_approval_for_any_action():
    safe = action(requires_approval=False)
    assert not needs_approval(safe, corroborated=True)
    assert needs_approval(safe, corroborated=False)
    checks = {c.name: c.detail for c in verdict(act=safe, corroborated=False).checks}
    assert checks["approval"] == ("required: only outside alerts opened this incident; no probe or rule of the "
                                  "workbench corroborates it")
