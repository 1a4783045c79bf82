"""The command as scripts, cron, monitoring wrappers and log shippers see it, in real processes: its
version, exit statuses and log lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support import ROOT, LocalServer, QuietHandler

pytestmark = pytest.mark.integration

TARGET = """
targets:
  - name: shop-web
    kind: http
    service: shop
    url: {url}
    timeout: 1s
    conditions: ["[STATUS] == 200"]
"""


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}, **extra}


def workbench(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "--data", str(tmp_path / "var"), *args], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


def test_version_of_the_console_script():
    script = Path(sys.executable).parent / "workbench"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"workbench {version('sre-workbench')}\n")


@pytest.fixture
def shop():
    """A real HTTP server on 127.0.0.1 whose answer (200 or 503) the test switches."""

    class Handler(QuietHandler):
        status = 200

        def do_GET(self):
            self.reply(Handler.status, b"shop\n", "text/plain")

    server = LocalServer(Handler)
    server.handler = Handler
    yield server
    server.close()


def test_probe_run_exit_status_says_whether_a_probe_failed(tmp_path, policy_dir, shop):
    policy = str(policy_dir(TARGET.format(url=shop.url + "/")))
    passing = workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status")
    assert passing.returncode == 0 and re.match(r"shop-web +ok ", passing.stdout), passing.stderr

    shop.handler.status = 503
    failing = workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status")
    assert failing.returncode == 1 and re.match(r"shop-web +FAIL .*got 503", failing.stdout), failing.stderr
    assert failing.stderr == ""
    without_flag = workbench(tmp_path, "--policy", policy, "probe", "run", "--once")
    assert without_flag.returncode == 0 and " FAIL " in without_flag.stdout

    shop.handler.status = 200
    assert workbench(tmp_path, "--policy", policy, "probe", "run", "--once", "--exit-status").returncode == 0
