"""The systemd unit in deploy/ is one systemd accepts as it is: `systemd-analyze verify`, which also
checks that ExecStart's program exists, reports nothing; and the WORKBENCH_ variables it sets are
ones the workbench reads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from app import logs, settings
from tests.support import ROOT

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
KNOWN = {settings.ENV_POLICY, settings.ENV_DATA, settings.ENV_DB, settings.ENV_PORT, logs.ENV_LOG_FORMAT}


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed (Debian package systemd; tests/run.sh installs it)")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit):
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_unit_sets_variables_the_workbench_reads(unit):
    names = set(re.findall(r"^#?Environment=(WORKBENCH_\w+)=", unit.read_text(), re.M))
    assert names and names <= KNOWN
