"""Errors raised while loading the operator's policy files.

    WorkbenchError            (base of every error the operator may see)
    └── PolicyError           one or more problems found in a policy directory
                              .problems: list[Problem(file, location, reason)]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LONG_QUOTE = 80  # quoted input longer than this is cut
LONG_TEXT = 600  # and a location or reason longer than this
_QUOTED = re.compile(r"""(?<!\w)(['"])((?:\\.|(?!\1)[^\\])*)\1(?!\w)""")  # as repr() quotes


class WorkbenchError(Exception):
    """An error with a message fit to show the operator as is."""


def _escape(char: str) -> str:
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def one_line(text: str, most: int = LONG_TEXT) -> str:
    """``text`` on one line: control and line-separator characters escaped (``\\n``, ``\\x1b``,
    ``\\u2028``), quoted input over LONG_QUOTE characters cut, and the whole cut at ``most``."""
    text = "".join(_escape(c) if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text))
    text = _QUOTED.sub(_cut_quote, text)
    return text if len(text) <= most else f"{text[:most]}... ({len(text):,} characters)"


def _cut_quote(match: re.Match) -> str:
    quote, inner = match[1], match[2]
    if len(inner) <= LONG_QUOTE:
        return match[0]
    return f"{quote}{inner[:LONG_QUOTE]}...{quote} ({len(inner):,} characters)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a policy file; every part is kept on one line, fit for a log line."""

    file: str
    location: str
    reason: str

    def __post_init__(self):
        for name in ("file", "location", "reason"):
            object.__setattr__(self, name, one_line(getattr(self, name)))

    def __str__(self) -> str:
        where = f"{self.file}: {self.location}" if self.location else self.file
        return f"{where}: {self.reason}"


class PolicyError(WorkbenchError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
