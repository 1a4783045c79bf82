"""Load and validate a policy directory.

Each known file feeds one section of :class:`policies.schema.Policy`; unknown YAML files,
keys repeated in one mapping (which YAML would let the last silently win), unknown keys, wrong
types and bad values are all reported together, each with the file, the line, the path inside
the file and the reason. Loading is bounded (policies/limits.py) and raises nothing but
PolicyError.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, get_args

import yaml
from pydantic import Field, ValidationError

from policies.actions import ActionsFile, Runner
from policies.channels import ChannelsFile
from policies.errors import PolicyError, Problem
from policies.hypotheses import HypothesesFile
from policies.limits import Unreadable, item_problems, read_policy_file, yaml_problems
from policies.references import dangling
from policies.routing import RoutingFile
from policies.rules import LearnedRulesFile, Rule, RulesFile
from policies.schema import SettingsFile, Strict, Target, TargetsFile

LEARNED = "learned-rules.yaml"
FILES = {"targets.yaml": TargetsFile, "rules.yaml": RulesFile, "settings.yaml": SettingsFile,
         "hypotheses.yaml": HypothesesFile, "routing.yaml": RoutingFile,
         "actions.yaml": ActionsFile, "channels.yaml": ChannelsFile, LEARNED: LearnedRulesFile}
DEFAULT_DIR = Path(__file__).resolve().parent
UNEXPECTED = "could not be checked"  # the start of the reason given for an exception a check did not expect
ALLOW_EMPTY = "allow_empty"  # a key at the top of any policy file: it may hold nothing (policies/guard.py)
log = logging.getLogger("workbench.policy")


class Policy(Strict):
    """Everything loaded from one policy directory."""

    targets: list[Target] = Field(default_factory=list)
    rules: RulesFile = Field(default_factory=RulesFile)
    settings: SettingsFile = Field(default_factory=SettingsFile)
    hypotheses: HypothesesFile = Field(default_factory=HypothesesFile)
    routing: RoutingFile = Field(default_factory=RoutingFile)
    actions: ActionsFile = Field(default_factory=ActionsFile)
    channels: ChannelsFile = Field(default_factory=ChannelsFile)
    files: frozenset[str] = Field(default=frozenset(), description="the policy files it was loaded from")
    allow_empty: frozenset[str] = Field(default=frozenset(), description="files that say allow_empty: true")
    digest: str = Field(default="", description="sha256 of the files' names and bytes, as files_digest gives it")
    learned: frozenset[str] = Field(default=frozenset(), description=f"names of the rules from {LEARNED}")

    def target(self, name: str) -> Target:
        return self._targets_by_name[name]

    @cached_property
    def _targets_by_name(self) -> dict[str, Target]:
        return {target.name: target for target in self.targets}


def load_policy(directory: Path | str) -> Policy:
    """Return the validated policy in ``directory`` or raise PolicyError listing every problem.
    Nothing else is raised: an exception no check expected becomes a problem naming the file."""
    directory = Path(directory)
    try:
        return _load_policy(directory)
    except PolicyError:
        raise
    except Exception as exc:
        raise PolicyError([_unexpected(directory, exc)]) from None


def _load_policy(directory: Path) -> Policy:
    present = _listing(directory)
    problems = [Problem(str(directory / name), "", f"unknown policy file; expected one of {', '.join(FILES)}")
                for name in sorted(present) if fnmatch(name, "*.y*ml") and name not in FILES]
    loaded = _load_files(directory, present, problems)
    sections = {name: result.section for name, result in loaded.items()}
    hand = sections["rules.yaml"].rules if "rules.yaml" in sections else []
    if LEARNED in sections:  # checked as the hand-written rules are, after them
        for i, rule in enumerate(sections[LEARNED].rules):
            if rule.name in {r.name for r in hand}:
                problems.append(_at(directory / LEARNED, loaded[LEARNED].node, ("rules", i, "name"),
                                    f"{rule.name!r} is the name of a rule in rules.yaml: a learned rule never "
                                    "replaces a hand-written one"))
        base = sections.get("rules.yaml", RulesFile())
        sections["rules.yaml"] = RulesFile.model_construct(services=base.services, noise=base.noise,
                                                           learning=base.learning,
                                                           rules=[*hand, *sections[LEARNED].rules])
    for name, loc, reason in dangling(sections, unusable={name for name in FILES if name in present} - set(loaded)):
        if name == "rules.yaml" and loc[:1] == ("rules",) and loc[1] >= len(hand):
            name, loc = LEARNED, ("rules", loc[1] - len(hand), *loc[2:])
        problems.append(_at(directory / name, loaded[name].node, loc, reason))
    if problems:
        raise PolicyError(problems)
    return _policy(loaded, sections.get("rules.yaml", RulesFile()))


def _load_files(directory: Path, present: set[str], problems: list[Problem]) -> dict[str, _Loaded]:
    """The files of FILES in the directory that load, by name; the problems of the others."""
    loaded = {}
    for name, model in FILES.items():
        if name not in present:
            continue
        try:
            result = _load_file(directory / name, model, problems)
        except Exception as exc:
            problems.append(_unexpected(directory / name, exc))
            continue
        if result is not None:
            loaded[name] = result
    return loaded


def _policy(loaded: dict[str, _Loaded], rules: RulesFile) -> Policy:
    """The policy of the files loaded; ``rules``: the hand-written rules with the learned ones after them."""
    def section(name: str):
        return loaded[name].section if name in loaded else FILES[name]()

    return Policy(targets=section("targets.yaml").targets,
                  rules=RulesFile(services=rules.services, noise=rules.noise, learning=rules.learning,
                                  rules=rules.rules),
                  learned=frozenset(r.name for r in section(LEARNED).rules),
                  settings=section("settings.yaml"), hypotheses=section("hypotheses.yaml"),
                  routing=section("routing.yaml"), actions=section("actions.yaml"),
                  channels=section("channels.yaml"), files=frozenset(loaded),
                  allow_empty=frozenset(name for name, result in loaded.items() if result.allow_empty),
                  digest=_digest({name: b"F" + result.data for name, result in loaded.items()}))


def files_digest(directory: Path | str) -> str:
    """The digest of the policy files now in ``directory``, as load_policy gives a policy loaded from them
    (a file that cannot be read counts with its reason): what changed on disk, cheaply."""
    directory = Path(directory)
    try:
        names = [name for name in os.listdir(directory) if fnmatch(name, "*.y*ml")]
    except OSError as exc:
        return _digest({"": b"E" + str(exc).encode()})
    contents = {}
    for name in names:
        try:
            contents[name] = b"F" + read_policy_file(directory / name)
        except Unreadable as exc:
            contents[name] = b"E" + str(exc).encode()
    return _digest(contents)


def _digest(contents: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(f"{name}\0{len(contents[name])}\0".encode("utf-8", "surrogateescape") + contents[name])
    return digest.hexdigest()


def _listing(directory: Path) -> set[str]:
    """The names in the policy directory; PolicyError when it cannot be listed."""
    try:
        return set(os.listdir(directory))
    except FileNotFoundError:
        reason = "policy directory does not exist"
    except NotADirectoryError:
        reason = "is not a directory"
    except OSError as exc:
        reason = f"policy directory cannot be read: {exc.strerror or exc}"
    raise PolicyError([Problem(str(directory), "", reason)])


def _unexpected(path: Path, exc: Exception) -> Problem:
    log.debug("unexpected error while loading %s", path, exc_info=exc)
    return Problem(str(path), "", f"{UNEXPECTED}: {type(exc).__name__}: {exc} (an error in the workbench; "
                                  "the policy is refused until it can be checked)")


class _Loaded(NamedTuple):
    section: Strict  # the file's model
    node: yaml.Node | None  # the YAML it was built from, for the lines of later problems
    data: bytes  # the file as read
    allow_empty: bool  # it says allow_empty: true


def _load_file(path: Path, model: type, problems: list[Problem]) -> _Loaded | None:
    before = len(problems)
    raw = _read(path, problems)
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        node = _compose(text)
        data = None if node is None else yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(Problem(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    except Exception as exc:  # PyYAML builds dates and numbers with Python calls that raise their own errors
        problems.append(_unbuildable(path, text, exc))
        return None
    for line, where, reason in _duplicate_keys(node):
        problems.append(Problem(str(path), f"line {line}, {where}", reason))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "", "the top level must be a mapping of keys"))
        return None
    for loc, reason in item_problems(path.name, node):
        problems.append(_at(path, node, loc, reason))
    if len(problems) > before:
        return None
    allow_empty = _take_allow_empty(path, node, data, problems)
    try:
        section = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_at(path, node, loc, reason) for loc, reason in _readable(exc.errors()))
        return None
    return None if len(problems) > before else _Loaded(section, node, raw, allow_empty)


def _compose(text: str) -> yaml.Node | None:
    """The document's nodes, with their lines: parsed by libyaml when PyYAML has it (several times
    faster on a large targets.yaml), else, or when libyaml refuses the text, by PyYAML's own parser,
    whose error is the one the operator reads."""
    if hasattr(yaml, "CSafeLoader"):
        try:
            return yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _read(path: Path, problems: list[Problem]) -> bytes | None:
    """The file's bytes within the limits of policies/limits.py, or None with the problems found."""
    try:
        raw = read_policy_file(path)
    except Unreadable as exc:
        problems.append(Problem(str(path), "", str(exc)))
        return None
    found = yaml_problems(str(path), raw.decode("utf-8", errors="replace"))
    problems.extend(found)
    return None if found else raw


def _take_allow_empty(path: Path, node, data: dict, problems: list[Problem]) -> bool:
    """Whether the file says ``allow_empty: true``; the key is the loader's, not the section's."""
    value = data.pop(ALLOW_EMPTY, False)
    if not isinstance(value, bool):
        problems.append(_at(path, node, (ALLOW_EMPTY,), f"must be true or false, got {value!r}"))
        return False
    return value


def _unbuildable(path: Path, text: str, exc: Exception) -> Problem:
    """The problem of a value PyYAML parsed but could not build (a date like 2001-02-30), at its line."""
    loader = yaml.SafeLoader(text)
    nodes = [yaml.compose(text)]
    seen: set[int] = set()
    while nodes:
        node = nodes.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node)
            except Exception as error:
                return Problem(str(path), f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}",
                               f"not valid YAML: {node.value!r} cannot be read as a {node.tag.rsplit(':', 1)[-1]}: "
                               f"{error}")
        elif isinstance(node, yaml.SequenceNode):
            nodes.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            nodes.extend(item for pair in node.value for item in pair)
    return _unexpected(path, exc)


def _at(path: Path, node, loc: tuple, reason: str) -> Problem:
    """A problem at ``loc`` in the file, with the line of the YAML there."""
    location, line = _location(loc, node)
    return Problem(str(path), f"line {line}, {location}" if line else location, reason)


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


def _location(loc: tuple, node) -> tuple[str, int | None]:
    """``loc`` as the operator writes it (``targets[0].url``) and the line (1-based) of the YAML there,
    or of the deepest node found on the way. The tag pydantic puts in the location of a union member
    (``targets[0].http.url``) is left out: it is the ``kind`` of the mapping it follows."""
    out, found, tagged = "", node, None
    for part in loc:
        if part in _TAGS and part == _kind(found) and found is not tagged:
            tagged = found
            continue
        child = _child(found, part)
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
        found = child if child is not None else found
    return out or "(top level)", found.start_mark.line + 1 if found is not None else None


def _kind(node) -> str | None:
    kind = _child(node, "kind")
    return kind.value if isinstance(kind, yaml.ScalarNode) else None


def _child(node, part):
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((v for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


_INTERNAL = re.compile(r"^[\w-]+\[.*\]$|^(str|int|float|bool|dict|list|none|is-instance)$")  # pydantic's own steps


def _readable(errors: list[dict]) -> list[tuple[tuple, str]]:
    """pydantic's errors as the operator reads them: without the steps pydantic adds to a location
    when a value may take several forms (``series.function-after[_selector(), str]``), and one error
    per place: of the forms a value failed, the one whose check said why (a value error) rather
    than that it is not some other type."""
    found: dict[tuple, tuple[bool, str]] = {}
    for error in errors:
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and _INTERNAL.match(part)))
        said = error["type"] == "value_error"
        if loc not in found or (said and not found[loc][0]):
            found[loc] = (said, _reason(error))
    return [(loc, reason) for loc, (_, reason) in found.items()]


def _reason(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = error["msg"]
    return message.removeprefix("Value error, ")
