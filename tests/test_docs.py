"""The manual in docs/ documents the public surface, and its links resolve.

Every policy key, probe kind, rule kind, runner kind, placeholder, command and metric has an
entry of its own in docs/: a table row whose first cell is the name in backticks
(``| `name` |``), or a heading with the name in backticks. A mention in prose is not an entry.
Policy keys are looked up in the section that documents their model, so a key of one file
cannot stand in for the same key of another. The registries (probe kinds, rule evaluators,
runners) match the pydantic unions the policy files are validated with, both ways.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from typing import get_args

import pytest
from prometheus_client import generate_latest
from pydantic import BaseModel

from app.cli import build_parser
from app.worker.jobs import Worker
from detectors.evaluators import EVALUATORS
from policies.actions import Action, ActionsFile, Parameter, Recommendation, Runner
from policies.channels import Approver, Channel, ChannelsFile, Escalation, EscalationStep
from policies.channels import Route as ChannelRoute
from policies.conditions import PLACEHOLDERS
from policies.hypotheses import CheckSpec, Clause, Gathering, HypothesesFile, HypothesisRule
from policies.loader import FILES
from policies.routing import Provider, Refinement, Route, RoutingFile
from policies.rules import (
    Errors,
    Latency,
    LearnedRulesFile,
    Learning,
    Noise,
    Rule,
    RulesFile,
    Saturation,
    ServiceSignals,
    Traffic,
)
from policies.schema import (
    AccessSettings,
    AssistantSettings,
    DemoSettings,
    FleetSettings,
    LogSignature,
    OidcAccess,
    SettingsFile,
    Target,
    TargetsFile,
)
from probes.kinds.registry import PROBES
from remediation.runners import RUNNERS
from tests.support import ROOT

DOCS = ROOT / "docs"
MANUAL = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


# --- reading Markdown -------------------------------------------------------------------
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
ROW = re.compile(r"^\|\s*`([^`|]+)`\s*\|")
CODE_SPAN = re.compile(r"`[^`]*`")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def page(name: str) -> list[str]:
    path = DOCS / name
    assert path.exists(), f"docs/{name} is missing"
    return prose(path.read_text())


def entries(lines: Iterable[str]) -> set[str]:
    """Names with an entry of their own: the code span that is a table row's whole first cell,
    or any code span in a heading."""
    names: set[str] = set()
    for line in lines:
        if heading := HEADING.match(line):
            names.update(span.strip("`") for span in CODE_SPAN.findall(heading[2]))
        elif row := ROW.match(line):
            names.add(row[1])
    return names


def section(name: str, heading: str) -> list[str]:
    """The lines of docs/``name`` from the heading whose text is ``heading`` to the next heading
    of the same or a higher level."""
    lines = page(name)
    for i, line in enumerate(lines):
        match = HEADING.match(line)
        if match and match[2] == heading:
            level = len(match[1])
            end = next((j for j in range(i + 1, len(lines))
                        if (h := HEADING.match(lines[j])) and len(h[1]) <= level), len(lines))
            return lines[i:end]
    raise AssertionError(f"docs/{name} has no heading {heading!r}")


def enclosing_section(name: str, entry: str) -> list[str]:
    """The section that holds ``entry``: its own, if it is a heading, else the one its row is in."""
    lines = page(name)
    for i, line in enumerate(lines):
        if entry in entries([line]):
            if HEADING.match(line):
                return section(name, HEADING.match(line)[2])
            above = next(j for j in range(i, -1, -1) if HEADING.match(lines[j]))
            return section(name, HEADING.match(lines[above])[2])
    raise AssertionError(f"docs/{name} has no entry for `{entry}`")


# --- the policy's models ----------------------------------------------------------------
def members(union) -> tuple[type[BaseModel], ...]:
    return get_args(get_args(union)[0])


def kind_of(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["kind"].annotation)[0]


def keys(model: type[BaseModel]) -> set[str]:
    """The keys a policy file spells for this model (aliases, such as a rule's ``for``)."""
    return {field.alias or name for name, field in model.model_fields.items()}


def models_in(annotation) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from models_in(arg)


def policy_models() -> set[type[BaseModel]]:
    """Every model reachable from the policy files' top-level models."""
    seen: set[type[BaseModel]] = set()
    todo = list(FILES.values())
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(m for field in model.model_fields.values() for m in models_in(field.annotation))
    return seen


# Discriminated unions: the keys every member shares are documented once, under the union's
# heading; each member's other keys under a heading of its kind ("`http`") on the same page.
UNIONS = {
    "targets": (Target, "policy.md", "Keys of every target"),
    "rules": (Rule, "rules.md", "Keys of every rule"),
    "runners": (Runner, "remediation.md", "Runners"),
    "channels": (Channel, "notifications.md", "Keys of every channel"),
}
# Every other model of the policy, and the heading of the section that documents its keys.
SECTIONS = {
    TargetsFile: ("policy.md", "`targets.yaml`"),
    LogSignature: ("policy.md", "Keys of a signature"),
    SettingsFile: ("policy.md", "`settings.yaml`"),
    DemoSettings: ("policy.md", "`demo`"),
    AssistantSettings: ("policy.md", "`mcp`"),
    AccessSettings: ("policy.md", "`access`"),
    FleetSettings: ("policy.md", "`fleet`"),
    OidcAccess: ("policy.md", "`oidc`"),
    RulesFile: ("rules.md", "`rules.yaml`"),
    LearnedRulesFile: ("rules.md", "`learned-rules.yaml`"),
    ServiceSignals: ("rules.md", "Golden signals (`services`)"),
    **dict.fromkeys((Latency, Traffic, Errors, Saturation), ("rules.md", "A signal's keys")),
    Noise: ("rules.md", "Noise (`noise`)"),
    Learning: ("rules.md", "Learning (`learning`)"),
    HypothesesFile: ("hypotheses.md", "`hypotheses.yaml`"),
    Gathering: ("hypotheses.md", "Gathering evidence (`evidence`)"),
    HypothesisRule: ("hypotheses.md", "Hypothesis rules"),
    Clause: ("hypotheses.md", "Clauses (`when`)"),
    CheckSpec: ("hypotheses.md", "Checks"),
    RoutingFile: ("hypotheses.md", "`routing.yaml`"),
    Provider: ("hypotheses.md", "Providers"),
    Route: ("hypotheses.md", "Routes"),
    Refinement: ("hypotheses.md", "Refinement (`refinement`)"),
    ActionsFile: ("remediation.md", "`actions.yaml`"),
    Action: ("remediation.md", "Actions"),
    Parameter: ("remediation.md", "Parameters"),
    Recommendation: ("remediation.md", "Recommendations (`recommend`)"),
    ChannelsFile: ("notifications.md", "`channels.yaml`"),
    ChannelRoute: ("notifications.md", "Routes (`routes`)"),
    Escalation: ("notifications.md", "Escalations (`escalations`)"),
    EscalationStep: ("notifications.md", "Steps"),
    Approver: ("notifications.md", "Approvers (`approvers`)"),
}


def common_keys(union) -> set[str]:
    return set.intersection(*(keys(m) for m in members(union)))


def test_every_policy_model_has_a_section():
    in_unions = {m for union, _, _ in UNIONS.values() for m in members(union)}
    undocumented = sorted(m.__name__ for m in policy_models() - in_unions - set(SECTIONS))
    assert not undocumented, f"add a section to docs/ and to SECTIONS for: {', '.join(undocumented)}"


@pytest.mark.parametrize("model", sorted(SECTIONS, key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_policy_keys(model):
    name, heading = SECTIONS[model]
    missing = sorted(keys(model) - entries(section(name, heading)))
    assert not missing, f"docs/{name}, {heading}: no entry for {', '.join(missing)}"


@pytest.mark.parametrize("union", sorted(UNIONS))
def test_keys_every_kind_shares(union):
    model, name, heading = UNIONS[union]
    missing = sorted(common_keys(model) - entries(section(name, heading)))
    assert not missing, f"docs/{name}, {heading}: no entry for {', '.join(missing)}"


@pytest.mark.parametrize("union,member", [(u, m) for u, (union, _, _) in sorted(UNIONS.items())
                                          for m in members(union)], ids=lambda x: getattr(x, "__name__", x))
def test_keys_of_each_kind(union, member):
    model, name, _ = UNIONS[union]
    heading = f"`{kind_of(member)}`"
    missing = sorted(keys(member) - common_keys(model) - entries(section(name, heading)))
    assert not missing, f"docs/{name}, {heading}: no entry for {', '.join(missing)}"


# --- kinds and their registries ---------------------------------------------------------
def test_probe_registry_matches_the_target_union():
    assert {kind_of(m) for m in members(Target)} == set(PROBES)


def test_rule_evaluators_match_the_rule_union():
    assert {kind_of(m) for m in members(Rule)} == set(EVALUATORS)


def test_runners_match_the_runner_union():
    assert {kind_of(m) for m in members(Runner)} == set(RUNNERS)


def test_every_probe_kind_has_placeholders():
    assert set(PLACEHOLDERS) == set(PROBES)


@pytest.mark.parametrize("kind", sorted(PROBES))
def test_probe_kinds(kind):
    assert kind in entries(page("policy.md"))


@pytest.mark.parametrize("kind", sorted(EVALUATORS))
def test_rule_kinds(kind):
    assert kind in entries(page("rules.md"))


@pytest.mark.parametrize("kind", sorted(RUNNERS))
def test_runner_kinds(kind):
    assert kind in entries(page("remediation.md"))


@pytest.mark.parametrize("placeholder", sorted({p for kind in PLACEHOLDERS.values() for p in kind}))
def test_placeholders(placeholder):
    assert f"[{placeholder}]" in entries(page("policy.md"))


@pytest.mark.parametrize("kind", sorted(PLACEHOLDERS))
def test_each_probe_kind_names_its_placeholders(kind):
    text = "\n".join(section("policy.md", f"`{kind}`"))
    missing = [p for p in PLACEHOLDERS[kind] if f"[{p}]" not in text]
    assert not missing, f"docs/policy.md, `{kind}`: does not name {', '.join(missing)}"


# --- commands ---------------------------------------------------------------------------
def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("workbench",)):
    """(path, parser) of every command and subcommand, e.g. ("workbench", "incidents", "list")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long form of each option a parser takes (--help aside)."""
    return [max(action.option_strings, key=len) for action in parser._actions
            if action.option_strings and not isinstance(action, argparse._HelpAction)
            and action.help != argparse.SUPPRESS]


COMMANDS = dict(commands(build_parser()))


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_commands(path):
    assert " ".join(path) in entries(page("cli.md"))


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_command_options(path):
    text = "\n".join(enclosing_section("cli.md", " ".join(path)))
    missing = [option for option in options(COMMANDS[path]) if option not in text]
    assert not missing, f"docs/cli.md, `{' '.join(path)}`: does not name {', '.join(missing)}"


def test_global_options():
    text = "\n".join(section("cli.md", "Global options"))
    missing = [option for option in options(build_parser()) if option not in text]
    assert not missing, f"docs/cli.md, Global options: does not name {', '.join(missing)}"


# --- metrics ----------------------------------------------------------------------------
def metric_names(registry) -> list[str]:
    """The names of the metrics a registry exposes, as /metrics shows them (# TYPE lines)."""
    return re.findall(r"^# TYPE (\S+)", generate_latest(registry).decode(), re.M)


def test_metrics(tmp_path):
    from ledger.db import open_ledger, sqlite_url
    from ledger.samples import SampleStore
    from policies.holder import PolicyHolder

    worker = Worker(PolicyHolder(ROOT / "policies", now=lambda: None), open_ledger(sqlite_url(tmp_path)),
                    SampleStore(tmp_path / "samples"))
    names = metric_names(worker.registry)
    documented = entries(page("endpoints.md"))
    assert names
    missing = [name for name in names if name not in documented]
    assert not missing, f"docs/endpoints.md: no entry for {', '.join(missing)}"


# --- links ------------------------------------------------------------------------------
def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose(path.read_text()):
        if match := HEADING.match(line):
            base = slug(match[2])
            n = counts.get(base, 0)
            counts[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path) -> list[str]:
    return [target for line in prose(path.read_text()) for target in LINK.findall(CODE_SPAN.sub("", line))]


@pytest.mark.parametrize("path", MANUAL, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_links_every_page():
    readme = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in readme]
    assert not missing, f"README.md does not link {', '.join(missing)}"
