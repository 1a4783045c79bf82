"""How much a policy directory may hold. A file past these limits is refused with a problem that
names the limit, before it is parsed (size) or built (nesting, values, items), so a hostile or
mistaken edit costs the worker a bounded moment, not minutes and gigabytes.

    file size        targets.yaml 32 MiB (100,000 targets of a few hundred bytes), other files 1 MiB
    nesting          32 levels of mappings and lists
    values           targets.yaml 4,000,000, other files 500,000, an alias counting the values it
                     repeats each time it is used
    items            targets 100,000; rules 5,000; services 10,000; actions 1,000; recommendations 1,000;
                     hypothesis rules 1,000; providers 100; routes 100
    numbers          as many digits as Python turns into an int (4,300)
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import yaml

from policies.errors import Problem

MiB = 1024 * 1024
FILE_BYTES = {"targets.yaml": 32 * MiB}
DEFAULT_FILE_BYTES = 1 * MiB
MAX_DEPTH = 32
FILE_VALUES = {"targets.yaml": 4_000_000}
DEFAULT_FILE_VALUES = 500_000
MAX_ITEMS = {  # file -> top-level key -> most items (list entries or mapping keys)
    "targets.yaml": {"targets": 100_000},
    "rules.yaml": {"rules": 5_000, "services": 10_000},
    "actions.yaml": {"actions": 1_000, "recommend": 1_000},
    "hypotheses.yaml": {"rules": 1_000},
    "routing.yaml": {"providers": 100, "routes": 100},
    "channels.yaml": {"channels": 1_000, "routes": 1_000, "escalations": 100, "approvals": 100, "approvers": 1_000,
                      "meta": 100},
}
_EVENT_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: the limits are checked fast


class Unreadable(Exception):
    """A policy file that cannot be read, or may not be: the reason, in the operator's words."""


def file_limit(name: str) -> int:
    return FILE_BYTES.get(name, DEFAULT_FILE_BYTES)


def read_policy_file(path: Path) -> bytes:
    """The bytes of a policy file of at most ``file_limit`` bytes; Unreadable says why not. A FIFO or
    device is refused without waiting on it; a symbolic link is followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(_why(path, exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("cannot be read: it is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("cannot be read: it is not a regular file (a FIFO, socket or device)")
        most = file_limit(path.name)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(most + 1) if info.st_size <= most else b""
    except OSError as exc:
        raise Unreadable(_why(path, exc)) from None
    finally:
        os.close(fd)
    if info.st_size > most or len(data) > most:
        raise Unreadable(f"too large: {max(info.st_size, len(data)):,} bytes, over the limit of {_size(most)} "
                         f"for {path.name}")
    return data


def _why(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "cannot be read: it is a symbolic link that loops (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"cannot be read: it is a symbolic link to {os.readlink(path)}, which does not exist"
    return f"cannot be read: {exc.strerror or exc}"


def _size(n: int) -> str:
    return f"{n // MiB} MiB ({n:,} bytes)" if n % MiB == 0 else f"{n:,} bytes"


def yaml_problems(path: str, text: str) -> list[Problem]:
    """Problems of nesting, values (aliases expanded) and overlong numbers, found in one pass over
    the parser's events, before anything is built; none when the text is no valid YAML (the loader
    says so)."""
    most = FILE_VALUES.get(Path(path).name, DEFAULT_FILE_VALUES)
    try:
        return _measure(path, yaml.parse(text, Loader=_EVENT_PARSER), most)
    except yaml.YAMLError:
        pass
    try:  # libyaml refused it: the loader's own parser may not
        return _measure(path, yaml.parse(text, Loader=yaml.SafeLoader), most)
    except yaml.YAMLError:
        return []


def _measure(path: str, events, most: int) -> list[Problem]:
    values, depth = 0, 0
    sizes: dict[str, int] = {}  # anchor -> values of its node
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values before) of each collection being read
    for event in events:
        where = f"line {event.start_mark.line + 1}"
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in (anchor for anchor, _ in open_nodes):
                return [Problem(path, where, f"alias *{event.anchor} is used inside the node it names, "
                                             "which would make it endless")]
            values += sizes.get(event.anchor, 0)
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor:
                sizes[event.anchor] = 1
            if problem := _overlong_number(event):
                return [Problem(path, where, problem)]
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            values, depth = values + 1, depth + 1
            open_nodes.append((event.anchor, values - 1))
            if depth > MAX_DEPTH:
                return [Problem(path, where, f"nested more than {MAX_DEPTH} levels deep")]
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before = open_nodes.pop()
            depth -= 1
            if anchor:
                sizes[anchor] = values - before
        if values > most:
            return [Problem(path, where, f"more than {most:,} values (an alias counts the values it "
                                         "repeats each time it is used)")]
    return []


def _overlong_number(event: yaml.ScalarEvent) -> str | None:
    digits = event.value.replace("_", "").lstrip("+-")
    most = sys.get_int_max_str_digits()
    if event.implicit[0] and digits.isdigit() and most and len(digits) > most:
        return f"a number of {len(digits):,} digits; at most {most:,} are allowed"
    return None


def item_problems(name: str, node: yaml.Node | None) -> list[tuple[tuple, str]]:
    """(location, reason) of each top-level list or mapping of the file with more items than allowed."""
    if not isinstance(node, yaml.MappingNode):
        return []
    found = []
    for key, value in node.value:
        most = MAX_ITEMS.get(name, {}).get(key.value) if isinstance(key, yaml.ScalarNode) else None
        if most is not None and isinstance(value, (yaml.SequenceNode, yaml.MappingNode)) and len(value.value) > most:
            found.append(((key.value,), f"{len(value.value):,} items, more than the {most:,} allowed"))
    return found
