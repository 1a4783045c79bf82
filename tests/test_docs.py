"""The public surface is documented: every probe kind, rule kind, policy key, placeholder, command and
metric."""

import re
from typing import get_args

import pytest
from prometheus_client import generate_latest

from app.cli import _parser
from app.worker.jobs import Worker
from policies.actions import Action, ActionsFile, Parameter, Recommendation, Runner
from policies.conditions import PLACEHOLDERS
from policies.hypotheses import (
    CheckSpec,
    Clause,
    Gathering,
    HypothesesFile,
    HypothesisRule,
)
from policies.routing import Provider, Refinement, Route, RoutingFile
from policies.rules import Noise, Rule, RulesFile, ServiceSignals
from policies.schema import DemoSettings, HostTarget, HttpTarget, SettingsFile
from probes.kinds.registry import PROBES
from tests.support import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("kind", sorted(PROBES))
def test_probe_kinds(kind):
    assert f"| `{kind}` |" in README


@pytest.mark.parametrize("key", sorted({*HttpTarget.model_fields, *HostTarget.model_fields,
                                        *SettingsFile.model_fields, *DemoSettings.model_fields}))
def test_policy_keys(key):
    assert f"`{key}`" in README


RULE_MODELS = get_args(get_args(Rule)[0])
RUNNER_MODELS = get_args(get_args(Runner)[0])


@pytest.mark.parametrize("kind", sorted(get_args(m.model_fields["kind"].annotation)[0] for m in RUNNER_MODELS))
def test_runner_kinds(kind):
    assert f"| `{kind}` |" in README


@pytest.mark.parametrize("key", sorted({name for model in (*RUNNER_MODELS, Action, ActionsFile, Parameter, Recommendation)
                                        for name in model.model_fields}))
def test_action_catalog_keys(key):
    assert f"`{key}`" in README


@pytest.mark.parametrize("kind", sorted(get_args(m.model_fields["kind"].annotation)[0] for m in RULE_MODELS))
def test_rule_kinds(kind):
    assert f"| `{kind}` |" in README


@pytest.mark.parametrize("key", sorted({field.alias or name for model in (*RULE_MODELS, RulesFile, Noise, ServiceSignals)
                                        for name, field in model.model_fields.items()}))
def test_rule_keys(key):
    assert f"`{key}`" in README


HYPOTHESIS_MODELS = (HypothesesFile, Gathering, HypothesisRule, Clause, CheckSpec, RoutingFile, Provider, Route,
                     Refinement)


@pytest.mark.parametrize("key", sorted({name for model in HYPOTHESIS_MODELS for name in model.model_fields}))
def test_hypothesis_and_routing_keys(key):
    assert f"`{key}`" in README


@pytest.mark.parametrize("placeholder", sorted({p for kind in PLACEHOLDERS.values() for p in kind}))
def test_placeholders(placeholder):
    assert f"[{placeholder}]" in README


def test_commands():
    commands = _parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`workbench {name}" in README


def test_metrics(tmp_path):
    from ledger.db import open_ledger, sqlite_url
    from ledger.samples import SampleStore
    from policies.holder import PolicyHolder

    worker = Worker(PolicyHolder(ROOT / "policies", now=lambda: None), open_ledger(sqlite_url(tmp_path)),
                    SampleStore(tmp_path / "samples"))
    names = re.findall(r"^# TYPE (\S+)", generate_latest(worker.registry).decode(), re.M)
    assert names
    assert [name for name in names if f"`{name}" not in README] == []
