"""Dependencies point one way: pages -> app -> (remediation, hypotheses, learning, notifications) -> probes ->
detectors -> ledger -> policies. A package imports only itself and the packages below it;
siblings on one level (remediation, hypotheses, learning, notifications) do not import each other."""

from __future__ import annotations

import ast

import pytest

from tests.support import ROOT

LEVELS = {"policies": 0, "ledger": 1, "detectors": 2, "probes": 3, "remediation": 4, "hypotheses": 4, "learning": 4,
          "notifications": 4,
          "app": 5, "pages": 6}


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & LEVELS.keys()


def modules():
    return sorted(path for package in LEVELS for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    package = path.relative_to(ROOT).parts[0]
    upward = sorted(other for other in imported_packages(path)
                    if other != package and LEVELS[other] >= LEVELS[package])
    assert not upward, f"{path.relative_to(ROOT)} imports {', '.join(upward)}, which is not below {package}"


def test_every_package_has_a_level():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"tests", "bench"} == set(LEVELS)
