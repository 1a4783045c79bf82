"""The command as scripts, cron, monitoring wrappers and log shippers see it, in real processes: its
version, exit statuses and log lines."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_version_of_the_console_script():
    script = Path(sys.executable).parent / "workbench"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"workbench {version('sre-workbench')}\n")
