"""Load and validate a policy directory.

Each known file feeds one section of :class:`policies.schema.Policy`; unknown YAML files,
keys repeated in one mapping (which YAML would let the last silently win), unknown keys, wrong
types and bad values are all reported together, each with the file, the line, the path inside
the file and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import yaml
from pydantic import Field, ValidationError

from policies.actions import ActionsFile, Runner
from policies.errors import PolicyError, Problem
from policies.hypotheses import HypothesesFile
from policies.routing import RoutingFile
from policies.rules import Rule, RulesFile
from policies.schema import SettingsFile, Strict, Target, TargetsFile

FILES = {"targets.yaml": TargetsFile, "rules.yaml": RulesFile, "settings.yaml": SettingsFile,
         "hypotheses.yaml": HypothesesFile, "routing.yaml": RoutingFile,
         "actions.yaml": ActionsFile}
DEFAULT_DIR = Path(__file__).resolve().parent


class Policy(Strict):
    """Everything loaded from one policy directory."""

    targets: list[Target] = Field(default_factory=list)
    rules: RulesFile = Field(default_factory=RulesFile)
    settings: SettingsFile = Field(default_factory=SettingsFile)
    hypotheses: HypothesesFile = Field(default_factory=HypothesesFile)
    routing: RoutingFile = Field(default_factory=RoutingFile)
    actions: ActionsFile = Field(default_factory=ActionsFile)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)


def load_policy(directory: Path | str) -> Policy:
    """Return the validated policy in ``directory`` or raise PolicyError listing every problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([Problem(str(directory), "", "policy directory does not exist")])
    problems: list[Problem] = []
    sections: dict[str, object] = {}
    for path in sorted(directory.glob("*.y*ml")):
        if path.name not in FILES:
            problems.append(
                Problem(str(path), "", f"unknown policy file; expected one of {', '.join(FILES)}")
            )
    for name, model in FILES.items():
        path = directory / name
        if not path.exists():
            continue
        loaded = _load_file(path, model, problems)
        if loaded is not None:
            sections[name] = loaded
    targets = sections.get("targets.yaml", TargetsFile())
    rules = sections.get("rules.yaml", RulesFile())
    names = {target.name for target in targets.targets}
    for i, rule in enumerate(rules.rules):
        if rule.parent is not None and rule.parent not in names:
            problems.append(Problem(str(directory / "rules.yaml"), f"rules[{i}].parent",
                                    f"names parent {rule.parent!r}, which is not a target in targets.yaml"))
    actions = sections.get("actions.yaml", ActionsFile())
    for i, rule in enumerate(rules.rules):
        for name in rule.recommend:
            if actions.action(name) is None:
                problems.append(Problem(str(directory / "rules.yaml"), f"rules[{i}].recommend",
                                        f"names action {name!r}, which is not in actions.yaml"))
    if problems:
        raise PolicyError(problems)
    settings = sections.get("settings.yaml", SettingsFile())
    return Policy(targets=targets.targets, rules=rules, settings=settings,  # type: ignore[attr-defined]
                  hypotheses=sections.get("hypotheses.yaml", HypothesesFile()),
                  routing=sections.get("routing.yaml", RoutingFile()), actions=actions)


def _load_file(path: Path, model: type, problems: list[Problem]):
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(Problem(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    for line, where, reason in _duplicate_keys(node):
        problems.append(Problem(str(path), f"line {line}, {where}", reason))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "", "the top level must be a mapping of keys"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            location = _location(error["loc"])
            line = _line(node, error["loc"])
            where = f"line {line}, {location}" if line else location
            problems.append(Problem(str(path), where, _reason(error)))
        return None


def _duplicate_keys(node, path: str = "", seen: set[int] | None = None):
    """(line, path, reason) of each key that repeats an earlier key of the same mapping, at any
    depth; a mapping reached again through an alias is looked at once."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            where, line = f"{path}.{key.value}" if path else key.value, key.start_mark.line + 1
            if (key.tag, key.value) in first:
                yield line, where, f"duplicate key {key.value!r} (first at line {first[key.tag, key.value]})"
            else:
                first[key.tag, key.value] = line
            yield from _duplicate_keys(value, where, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]", seen)


def _kinds(union) -> set[str]:
    members = get_args(get_args(union)[0])
    return {get_args(member.model_fields["kind"].annotation)[0] for member in members}


_TAGS = _kinds(Target) | _kinds(Rule) | _kinds(Runner)  # discriminated-union tags pydantic inserts into locations


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _reason(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _line(node, loc: tuple) -> int | None:
    """Line (1-based) of the YAML node at ``loc``, or of the deepest node found on the way."""
    found = node
    for part in loc:
        child = None
        if isinstance(found, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in found.value if k.value == part), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            child = found.value[part]
        if child is not None:
            found = child
    return found.start_mark.line + 1 if found is not None else None
