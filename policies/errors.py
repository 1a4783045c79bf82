"""Errors raised while loading the operator's policy files.

    WorkbenchError            (base of every error the operator may see)
    └── PolicyError           one or more problems found in a policy directory
                              .problems: list[Problem(file, location, reason)]
"""

from __future__ import annotations

from dataclasses import dataclass


class WorkbenchError(Exception):
    """An error with a message fit to show the operator as is."""


@dataclass(frozen=True)
class Problem:
    file: str
    location: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.location}" if self.location else self.file
        return f"{where}: {self.reason}"


class PolicyError(WorkbenchError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
